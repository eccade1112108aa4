"""Topic names: the input, the output topics and the table changelogs, with optional prefix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TopicNames"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every topic txstream reads or writes (``prefix`` lets tests and tenants share a broker).

    ``output_suffix`` goes after every output topic's name (``alerts-v2``): a state version
    replayed with versioned outputs writes beside the live topics, not into them.
    """

    prefix: str = ""
    output_suffix: str = ""

    @property
    def transactions(self) -> str:
        """Input: one record per purchase, keyed by customer id."""
        return f"{self.prefix}transactions"

    @property
    def alerts(self) -> str:
        """A customer's tumbling-window total passed the threshold."""
        return f"{self.prefix}alerts{self.output_suffix}"

    @property
    def window_results(self) -> str:
        """One final record per closed window."""
        return f"{self.prefix}window-results{self.output_suffix}"

    @property
    def sessions(self) -> str:
        """One record per closed session."""
        return f"{self.prefix}sessions{self.output_suffix}"

    @property
    def late(self) -> str:
        """Events that arrived after (some of) their windows closed."""
        return f"{self.prefix}late-transactions{self.output_suffix}"

    @property
    def dead_letters(self) -> str:
        """Records that did not parse or validate, with the original bytes and a reason."""
        return f"{self.prefix}transactions-dlq{self.output_suffix}"

    def outputs(self) -> list[str]:
        """The output topics."""
        return [self.alerts, self.window_results, self.sessions, self.late, self.dead_letters]

    def all(self) -> list[str]:
        """Input and output topics (not the changelogs, which Faust names and creates)."""
        return [self.transactions, *self.outputs()]
