"""acrsync: keeps ACR Enterprise Edition images replicated across Alibaba Cloud accounts."""

__version__ = "0.1.0"
