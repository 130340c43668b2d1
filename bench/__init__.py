"""``python -m bench``: the product's performance figures, each against a baseline measured
in the same run, written to ``bench/results.md``.

Figures: (1) ingest hot path, (2) aggregator DynamoDB writes, (3) consumer CPU, (4) archive
size, (5) freshness on the local stack, (6) read latency at 10^4 and 10^5 events, (7)
sustained local throughput with zero loss and what bounds it. ``--quick`` is a ~2-minute
version with smaller samples. Everything started is stopped; nothing binds beyond 127.0.0.1.
"""
