"""Records on the wire: transactions in, output records out, money and times as text."""
