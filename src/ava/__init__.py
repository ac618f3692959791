"""align-via-actions: teach language models human behaviour, measure their opinion alignment."""

__version__ = "0.1.0"
