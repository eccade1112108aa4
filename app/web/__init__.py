"""Web serving: JSON views, the dashboard, metrics, OpenAPI and the peers they ask."""
