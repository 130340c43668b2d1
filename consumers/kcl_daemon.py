"""The KCL MultiLangDaemon for one consumer: its properties from the settings, and the JVM
command that runs it (``python -m consumers.kcl_daemon aggregator``: the ECS task's command,
and what ``make local CONSUMERS=kcl`` starts).

The daemon polls the stream (no enhanced fan-out), keeps its leases, checkpoints and worker
state in DynamoDB tables named after the application, publishes no CloudWatch metrics of its
own (the processors' EMF metrics are the product's), and talks CBOR to nobody: the SDK's
``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL`` variables, when set, are its endpoints.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from clickstream.settings import Settings, get_settings

CONSUMERS = ("aggregator", "archiver")
MAIN_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"
# Maven's output (`make kcl-jars`), or the image's copy of it (CLICKSTREAM_KCL_JARS).
DEFAULT_JARS = Path(__file__).resolve().parent.parent / "tools" / "kcl" / "jars"
LOGBACK = Path(__file__).resolve().parent / "kcl_logback.xml"
# Properties a deployment or a test may override (CLICKSTREAM_KCL_PROPERTIES, a JSON object):
# lease and failover timings, batch size, polling interval.
DEFAULTS = {
    "initialPositionInStream": "TRIM_HORIZON",
    "retrievalMode": "POLLING",
    "maxRecords": "1000",
    "idleTimeBetweenReadsInMillis": "1000",
    "failoverTimeMillis": "10000",
    "shardSyncIntervalMillis": "60000",
    "parentShardPollIntervalMillis": "10000",
    "metricsLevel": "NONE",
    "AWSCredentialsProvider": "DefaultCredentialsProvider",
    "processingLanguage": "python/3",
}
# The archiver writes an object per shard per batch: it reads every 10 s, up to 10,000
# records (GetRecords' maximum), as its Lambda mapping batches 30 s up to 1,000.
CONSUMER_DEFAULTS = {
    "aggregator": {},
    "archiver": {"idleTimeBetweenReadsInMillis": "10000", "maxRecords": "10000"},
}


def application_name(consumer: str, settings: Settings) -> str:
    """The KCL application: the name of its lease table (and of its coordinator-state and
    worker-metrics tables, with KCL's suffixes)."""
    return f"{settings.stream_name}-{consumer}-kcl"


def lease_tables(consumer: str, settings: Settings) -> tuple[str, str, str]:
    name = application_name(consumer, settings)
    return name, f"{name}-CoordinatorState", f"{name}-WorkerMetricStats"


def endpoint(service: str, env: Mapping[str, str]) -> str | None:
    """The endpoint the SDKs would use for ``service`` (``KINESIS``, ``DYNAMODB``)."""
    return env.get(f"AWS_ENDPOINT_URL_{service}") or env.get("AWS_ENDPOINT_URL") or None


def daemon_properties(
    consumer: str,
    settings: Settings,
    env: Mapping[str, str],
    python: str = sys.executable,
) -> dict[str, str]:
    """The daemon's properties for ``consumer``, from the settings and the environment."""
    if consumer not in CONSUMERS:
        raise ValueError(f"unknown consumer {consumer!r}; one of {', '.join(CONSUMERS)}")
    properties = DEFAULTS | CONSUMER_DEFAULTS[consumer]
    properties |= {
        "executableName": f"{python} -m consumers.kcl {consumer}",
        "streamName": settings.stream_name,
        "applicationName": application_name(consumer, settings),
        "regionName": settings.region,
    }
    for service, key in (("KINESIS", "kinesisEndpoint"), ("DYNAMODB", "dynamoDBEndpoint")):
        url = endpoint(service, env)
        if url:
            properties[key] = url
    if env.get("CLICKSTREAM_KCL_WORKER_ID"):
        properties["workerIdentifier"] = env["CLICKSTREAM_KCL_WORKER_ID"]
    overrides = json.loads(env.get("CLICKSTREAM_KCL_PROPERTIES") or "{}")
    if not isinstance(overrides, dict):
        raise ValueError("CLICKSTREAM_KCL_PROPERTIES must be a JSON object of properties")
    return properties | {str(k): str(v) for k, v in overrides.items()}


def properties_text(properties: Mapping[str, str]) -> str:
    return "".join(f"{key} = {value}\n" for key, value in sorted(properties.items()))


def java_command(properties_file: Path, jars: Path) -> list[str]:
    """The daemon's JVM: the SDK's CBOR off (JSON on the wire, which every emulator speaks)."""
    if not any(jars.glob("amazon-kinesis-client-multilang-*.jar")):
        raise FileNotFoundError(f"no KCL jars in {jars}: run `make kcl-jars`")
    return [
        os.environ.get("JAVA", "java"),
        "-Daws.cborEnabled=false",
        f"-Dlogback.configurationFile={LOGBACK}",
        "-cp",
        f"{jars}/*",
        MAIN_CLASS,
        "--properties-file",
        str(properties_file),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in CONSUMERS:
        raise SystemExit(f"usage: python -m consumers.kcl_daemon {{{','.join(CONSUMERS)}}}")
    env = os.environ
    properties = daemon_properties(args[0], get_settings(), env)
    state = Path(tempfile.mkdtemp(prefix=f"kcl-{args[0]}-"))
    properties_file = state / "daemon.properties"
    properties_file.write_text(properties_text(properties))
    command = java_command(properties_file, Path(env.get("CLICKSTREAM_KCL_JARS") or DEFAULT_JARS))
    # The JVM takes this process's place (its PID, its signals): one process per consumer.
    os.execvpe(command[0], command, {**env, "AWS_CBOR_DISABLE": "true"})


if __name__ == "__main__":
    main()
