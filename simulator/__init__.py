"""Traffic simulator: realistic user journeys pushed at the clickstream API (or straight at the
stream), with a ground-truth ledger and a reconciliation against what the pipeline shows.

Journeys (each one session of timed steps; mix and step probabilities in
``simulator.config``, overridable with ``--config FILE.json``):

* browser (60%): lands, views content and product pages, leaves;
* researcher (20%): searches, compares products, may add one to the cart and abandon;
* buyer (15%): page_view -> add_to_cart -> checkout -> purchase;
* quick buyer (5%): lands on a product page and buys it ("buy now" or via the cart).

Visitors come back (``user_type`` new/returning, same device and place), products and pages
have Zipf-like popularity, referrers and campaigns, device/platform/browser mixes carry the
matching real user-agent strings, purchases carry a ``value``.

Run::

    python -m simulator --duration 60                    # 50 users, 20 events/s, real time
    python -m simulator --users 200 --rate 100 --max-events 10000 --batch 100
    python -m simulator --rate 0 --max-events 100000     # flat out (load), natural think times
    python -m simulator --flat-out --rate 500 --max-events 100000   # flat out, dense timestamps
    python -m simulator --speedup 60 --duration 60       # back-fill the last hour in a minute
    python -m simulator --seed 7 --start 2026-11-24T00:00:00Z --max-events 500 --dry-run
    python -m simulator --direct-kinesis --max-events 5000   # PutRecords, bypassing the API

Pacing: every event carries its own timestamp (``--start`` + simulated offset) and, paced,
is sent when the wall clock reaches it (compressed ``--speedup`` times); a partial batch
waits at most a second. ``--rate`` is events per *simulated* second across all ``--users``
(think times are scaled to hit it); ``--rate 0`` keeps natural human think times and sends
flat out; ``--flat-out`` sends flat out whatever the rate. Without ``--start``, real-time
runs start now; back-fills and flat-out runs start early enough that the last timestamp is
about now (the API refuses timestamps more than a day ahead).

Determinism: the same ``--seed``, ``--start``, ``--users``, ``--rate`` and config give
identical events (ids, timestamps, everything), however fast they are delivered. Without
``--seed`` a random one is drawn and printed in the summary and the ledger.

Delivery: ``POST /events`` batches (``--batch``) on ``--workers`` threads, each with its own
``requests.Session``. 429/5xx/connection errors are retried with capped, jittered backoff
honouring ``Retry-After``; other 4xx are final. Per-record ``errors`` in a 200 count as
*rejected*; batches that still fail after the retries count as *undelivered*; both are in
the summary and the ledger. Exit status 3 when anything sent was not accepted.

Ledger and reconcile -- the baseline design: the pipeline's aggregates are cumulative for
the whole stack, so a run with ``--ledger FILE`` first records the pipeline's state (``GET
/stats``, ``/pages/top``, ``/funnel``, and the archive's object keys), waiting briefly for
it to stop moving, into the ledger. ``reconcile`` then compares the ledger's accepted counts
with *now minus that baseline*; nothing else to remember::

    python -m simulator --duration 60 --ledger out/ledger.json
    python -m simulator reconcile --ledger out/ledger.json --wait 120

For a baseline taken at some other moment (e.g. several runs reconciled together, or runs
that could not reach the API), ``python -m simulator snapshot --out base.json`` and
``reconcile --baseline base.json``; ``reconcile --no-baseline`` compares absolute numbers (a
fresh stack). The archive check downloads only Parquet objects under ``events/`` that are
not in the baseline, counts rows and distinct event ids with DuckDB
(``read_parquet(..., hive_partitioning=true)``) and checks every accepted id is there.
``reconcile`` polls until every metric matches or ``--wait`` seconds pass (consumers are
asynchronous), prints metric / expected / found / difference and exits 1 on any difference.
Other traffic hitting the stack between the baseline and the reconcile shows up as a
difference, by design.

Local stack: when ``--endpoint`` is on loopback and ``AWS_ENDPOINT_URL`` is unset, S3 and
Kinesis (baseline, archive check, ``--direct-kinesis``) go to the local emulator the way
``localdev`` picks it (LocalStack on :4566 if it answers, else moto on
``CLICKSTREAM_EMULATOR_PORT``, default 4567), never to real AWS by accident. Against AWS,
point ``--endpoint`` at the deployed API and use the usual AWS credentials;
``CLICKSTREAM_ARCHIVE_BUCKET`` / ``CLICKSTREAM_STREAM_NAME`` name the bucket and stream.
"""
