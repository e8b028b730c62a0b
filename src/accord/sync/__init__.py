"""Channel sync (issue 4): desired state, coalescing, risk priority, batching, rate limits, retries, reconciliation
and order ingestion. See :mod:`accord.sync.store`, :mod:`accord.sync.subscriber`, :mod:`accord.sync.worker` and
:mod:`accord.sync.orders`."""
