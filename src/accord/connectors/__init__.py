"""Marketplace connectors: one module per dialect, a shared interface in :mod:`accord.connectors.base`, limits as
data in ``limits.json``, and :func:`accord.connectors.registry.create_connector` to build one from a channel config.
"""
