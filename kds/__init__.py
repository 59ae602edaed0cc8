"""kds: kitchen order-endpoint daemon and display service."""

__version__ = "0.1.0"
