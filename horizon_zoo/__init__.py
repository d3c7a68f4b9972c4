"""horizon-zoo: competing Stan models of how AI agents' success falls with task length."""

__version__ = "0.1.0"
