"""``make local``'s supervisor: the emulator, the template's resources, the consumers (the
aggregator and archiver on the stream, the jobs function on the jobs queue), the API and the
web server on loopback; a consumer that dies is restarted; all stopped in order
(docs/local-stack.md)."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localdev.processes import LOOPBACK, OutputPump, answers, free_port, port_in_use, wait_for
from localdev.web import QuietStaticHandler

ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = ("aggregator", "archiver", "jobs")  # jobs: the exports' and erasures' queue
# The stream's consumers, which CONSUMERS=kcl runs under the KCL (jobs stays on its queue)
KCL_CONSUMERS = ("aggregator", "archiver")
log = logging.getLogger("localdev")
LOCAL_SHARDS = 2


@dataclass
class StackConfig:
    api_port: int = 8000
    web_port: int = 8080
    emulator_port: int = 4567
    metrics_port: int = 9464  # the consumers' Prometheus metrics
    region: str = "us-east-1"
    state_dir: Path = ROOT / ".local"
    use_localstack: bool = True
    serve_web: bool = True
    # "lambda": each consumer behind the event-source runner; "kcl": the stream's consumers
    # each under the KCL's MultiLangDaemon (consumers/kcl_daemon.py), leases in the
    # emulator's DynamoDB.
    consumers: str = "lambda"
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            api_port=int(env.get("CLICKSTREAM_API_PORT", "8000")),
            web_port=int(env.get("CLICKSTREAM_WEB_PORT", "8080")),
            emulator_port=int(env.get("CLICKSTREAM_EMULATOR_PORT", "4567")),
            metrics_port=int(env.get("CLICKSTREAM_METRICS_PORT", "9464")),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            state_dir=Path(env.get("CLICKSTREAM_STATE_DIR", str(ROOT / ".local"))),
            use_localstack=env.get("CLICKSTREAM_USE_LOCALSTACK", "auto") != "false",
            consumers=consumer_runtime(env.get("CLICKSTREAM_CONSUMERS") or "lambda"),
        )


def consumer_runtime(value: str) -> str:
    if value not in ("lambda", "kcl"):
        raise ValueError(f"CLICKSTREAM_CONSUMERS must be lambda or kcl, not {value!r}")
    return value


# The KCL daemon's timings on the local stack: reads every 200 ms (as the event-source runner
# polls), a dead worker's leases taken over after 10 s, new shards found within 5 s.
LOCAL_KCL_PROPERTIES = {
    "idleTimeBetweenReadsInMillis": "200",
    "failoverTimeMillis": "10000",
    "shardSyncIntervalMillis": "5000",
    "parentShardPollIntervalMillis": "1000",
    "maxRecords": "100",
    # KCL 3 assigns leases only to workers that have reported their metrics: report soon.
    "leaseAssignmentIntervalMillis": "2000",
    "workerMetricsReporterFreqInMillis": "2000",
    "inMemoryWorkerMetricsCaptureFrequencyMillis": "1000",
}


class LoopbackStack:
    """Starts, supervises and stops the local stack's processes."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.pumps: list[OutputPump] = []
        self.web_server: ThreadingHTTPServer | None = None
        self.alarm_evaluator: Any = None
        self.endpoint_url = ""
        self.emulator = ""
        self.outputs: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.log_dir = config.state_dir / "logs"
        self.restarts: dict[str, int] = {}
        self.keys: dict[str, str] = {}
        self._cloudwatch: Any = None
        self.consumer_metrics: Any = None  # localdev.prometheus.PrometheusMetrics
        self.metrics_server: Any = None
        self.kinesis_h2c_url = ""  # the KCL daemons' Kinesis endpoint on moto

    # --- emulator ------------------------------------------------------------------------

    def _start_emulator(self) -> None:
        from localdev.localstack import edge_url, health_url

        explicit = os.environ.get("AWS_ENDPOINT_URL")
        if explicit:
            self.endpoint_url, self.emulator = explicit, "external"
        elif self.config.use_localstack and answers(health_url(edge_url())):
            self.endpoint_url, self.emulator = edge_url(), "localstack"
        else:
            if self.config.use_localstack:
                log.info("no LocalStack answers at %s: starting moto's server", edge_url())
            port = self.config.emulator_port or free_port()
            if port_in_use(port):
                raise RuntimeError(
                    f"port {port} is taken; set CLICKSTREAM_EMULATOR_PORT to a free port"
                )
            # moto's server, with its Kinesis shards made safe for concurrent writers
            command = [sys.executable, "-m", "localdev.emulator", "-H", LOOPBACK, "-p", str(port)]
            self._spawn("emulator", command, env=dict(os.environ))
            self.endpoint_url, self.emulator = f"http://{LOOPBACK}:{port}", "moto"
            wait_for(
                f"{self.endpoint_url}/moto-api/", 30, "moto_server", self.processes["emulator"]
            )
        log.info("AWS emulator: %s (%s)", self.endpoint_url, self.emulator)

    def _base_env(self) -> dict[str, str]:
        from localdev.localstack import CREDENTIALS

        env = dict(os.environ)
        env.setdefault("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
        env.setdefault("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
        env |= {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
            "PYTHONUNBUFFERED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": env.get("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"),
            # chalice local gives every request the source address 127.0.0.1: it stands where
            # API Gateway does, so the X-Forwarded-For entry a client's proxy adds is believed.
            "CLICKSTREAM_TRUSTED_PROXIES": env.get(
                "CLICKSTREAM_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"
            ),
            # The local archiver's batches take well under a second (no 60 s Lambda timeout
            # to wait out): an erasure's sweep waits 10 s after its marker, not 120.
            "CLICKSTREAM_ERASURE_SETTLE_S": env.get("CLICKSTREAM_ERASURE_SETTLE_S", "10"),
        }
        # X-Ray segments only when a daemon is there to receive them.
        if not env.get("AWS_XRAY_DAEMON_ADDRESS"):
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        return env | self.config.extra_env

    # --- resources -----------------------------------------------------------------------

    def _provision(self) -> None:
        from localdev.provision import provision

        parameters = {"Environment": "local"}
        if self.env.get("CLICKSTREAM_READ_AUTH"):  # cognito: the stack makes a user pool
            parameters["ReadAuth"] = self.env["CLICKSTREAM_READ_AUTH"]
        # Two shards locally unless told otherwise (the template's default is one): every read
        # then merges shards, as a busier stage's do.
        parameters["ShardCount"] = self.env.get("CLICKSTREAM_SHARDS") or str(LOCAL_SHARDS)
        self.outputs = provision(self.endpoint_url, self.config.region, parameters)
        names = {
            "CLICKSTREAM_STREAM_NAME": "StreamName",
            "CLICKSTREAM_AGGREGATES_TABLE": "AggregatesTableName",
            "CLICKSTREAM_CHECKPOINTS_TABLE": "CheckpointsTableName",
            "CLICKSTREAM_KEYS_TABLE": "KeysTableName",
            "CLICKSTREAM_JOBS_TABLE": "JobsTableName",
            "CLICKSTREAM_JOBS_QUEUE": "JobsQueueName",
            "CLICKSTREAM_ARCHIVE_BUCKET": "ArchiveBucketName",
            "CLICKSTREAM_DLQ_NAME": "DeadLetterQueueName",
            "CLICKSTREAM_ON_FAILURE_QUEUE_URL": "DeadLetterQueueUrl",
            "CLICKSTREAM_ALARM_TOPIC_ARN": "AlarmTopicArn",
            "CLICKSTREAM_READ_AUTH": "ReadAuth",
            "CLICKSTREAM_COGNITO_USER_POOL_ARN": "UserPoolArn",
        }
        for variable, output in names.items():
            if output in self.outputs:
                self.env[variable] = str(self.outputs[output])

    def _create_keys(self) -> None:
        from localdev.keys import create_stack_keys

        table = self.env.get("CLICKSTREAM_KEYS_TABLE", "clickstream-keys")
        self.keys.update(create_stack_keys(self._client("dynamodb"), table))

    # --- processes -----------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, str],
        cwd: Path = ROOT,
        observe: Callable[[str], Any] | None = None,
    ) -> subprocess.Popen[str]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
        )
        self.processes[name] = process
        assert process.stdout is not None
        pump = OutputPump(
            name, process.stdout, self.log_dir / f"{name}.log", self._cloudwatch, observe
        )
        pump.start()
        self.pumps.append(pump)
        return process

    def api_command(self) -> list[str]:
        """``chalice local`` through the local launcher (localdev.api_server)."""
        return [
            sys.executable,
            "-m",
            "localdev.api_server",
            "--stage",
            "local",
            "--host",
            LOOPBACK,
            "--port",
            str(self.config.api_port),
            "--no-autoreload",
        ]

    def start_api(self) -> subprocess.Popen[str]:
        process = self._spawn("api", self.api_command(), env=self.env, cwd=ROOT / "api")
        wait_for(f"http://{LOOPBACK}:{self.config.api_port}/", 60, "chalice local", process)
        return process

    def _spawn_consumer(self, function: str) -> None:
        observe = None if self.consumer_metrics is None else self.consumer_metrics.record_line
        if self.config.consumers == "kcl" and function in KCL_CONSUMERS:
            self._spawn(
                function,
                [sys.executable, "-m", "consumers.kcl_daemon", function],
                env=self.kcl_env(),
                observe=observe,
            )
            return
        self._spawn(
            function,
            [sys.executable, "-m", "localdev.consumer", function],
            env=self.env,
            observe=observe,
        )

    def kcl_env(self, worker_id: str | None = None) -> dict[str, str]:
        """A KCL worker's environment: the stack's, the stream's ARN for the records' source,
        the local timings (a test's CLICKSTREAM_KCL_PROPERTIES goes over them)."""
        stream = self._client("kinesis").describe_stream_summary(
            StreamName=self.env["CLICKSTREAM_STREAM_NAME"]
        )["StreamDescriptionSummary"]
        properties = LOCAL_KCL_PROPERTIES | json.loads(
            self.env.get("CLICKSTREAM_KCL_PROPERTIES") or "{}"
        )
        env = self.env | {
            "CLICKSTREAM_STREAM_ARN": stream["StreamARN"],
            "CLICKSTREAM_KCL_PROPERTIES": json.dumps(properties),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), self.env.get("PYTHONPATH", "")])
            ),
        }
        if self.kinesis_h2c_url:
            env["AWS_ENDPOINT_URL_KINESIS"] = self.kinesis_h2c_url
        if worker_id:
            env["CLICKSTREAM_KCL_WORKER_ID"] = worker_id
        return env

    def _start_metrics(self) -> None:
        """The consumers' metrics (fed by their output) and the dead-letter queue's depth, on
        the metrics port; kept across a consumer's restart, as its counters should be."""
        from prometheus_client import start_http_server

        from localdev.prometheus import DeadLetterQueueDepth, PrometheusMetrics

        self.consumer_metrics = PrometheusMetrics()
        queue_url = self.outputs.get("DeadLetterQueueUrl")
        if queue_url:
            self.consumer_metrics.registry.register(
                DeadLetterQueueDepth(self._client("sqs"), str(queue_url))
            )
        self.metrics_server, _ = start_http_server(
            self.config.metrics_port, addr=LOOPBACK, registry=self.consumer_metrics.registry
        )

    def _start_h2c_bridge(self) -> None:
        """The KCL daemons reach Kinesis through localdev/H2cBridge.java: their Kinesis client
        speaks only HTTP/2, the emulator only HTTP/1.1. DynamoDB (the leases) needs no bridge."""
        from consumers.kcl_daemon import DEFAULT_JARS

        port = free_port()
        command = [
            os.environ.get("JAVA", "java"),
            "-cp",
            f"{os.environ.get('CLICKSTREAM_KCL_JARS') or DEFAULT_JARS}/*",
            str(ROOT / "localdev" / "H2cBridge.java"),
            str(port),
            self.endpoint_url,
        ]
        process = self._spawn("kinesis-h2c", command, env=self.env)
        deadline = time.monotonic() + 60
        while not port_in_use(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the KCL's HTTP/2 bridge did not start; see its log")
            time.sleep(0.2)
        self.kinesis_h2c_url = f"http://{LOOPBACK}:{port}"

    def _start_consumers(self) -> None:
        if self.config.consumers == "kcl" and self.emulator == "moto":
            self._start_h2c_bridge()
        for function in CONSUMERS:
            self._spawn_consumer(function)
        # The deployed stack's hourly schedule (consumers.compactor), on the same period.
        every = os.environ.get("CLICKSTREAM_COMPACT_EVERY_S", "3600")
        self._spawn(
            "compactor", [sys.executable, "-m", "localdev.compact", "--every", every], env=self.env
        )

    def _dashboard_cognito(self) -> dict[str, str] | None:
        from infra.deploy import dashboard_cognito

        cognito = dashboard_cognito(self.outputs)
        return None if cognito is None else {**cognito, "endpoint": self.endpoint_url}

    def _start_web(self) -> None:
        from infra.deploy import dashboard_config

        cognito = self._dashboard_cognito()
        handler_class = type(
            "DashboardHandler",
            (QuietStaticHandler,),
            {
                "config_js": None
                if cognito is None
                else dashboard_config(self.api_url, cognito).encode(),
                "demo_values": {
                    "API_URL": self.api_url,
                    "WRITE_KEY": self.keys.get("write", ""),
                    "READ_KEY": "" if cognito else self.keys.get("read", ""),
                },
            },
        )
        handler = functools.partial(handler_class, directory=str(ROOT / "web"))
        self.web_server = ThreadingHTTPServer((LOOPBACK, self.config.web_port), handler)
        threading.Thread(target=self.web_server.serve_forever, name="web", daemon=True).start()

    def _start_alarm_evaluator(self) -> None:
        if self.emulator == "localstack":
            return  # LocalStack evaluates alarms itself; moto only stores them
        try:
            from localdev.alarms import AlarmEvaluator
        except ImportError:
            return
        interval = float(os.environ.get("CLICKSTREAM_ALARM_EVALUATION_S", "10"))
        # Tests shorten every alarm's period; a user's stack keeps the template's.
        period = os.environ.get("CLICKSTREAM_ALARM_PERIOD_S")
        self.alarm_evaluator = AlarmEvaluator(
            self._client("cloudwatch"),
            self._client("sns"),
            sqs=self._client("sqs"),
            interval=interval,
            period_override=int(period) if period else None,
            region=self.config.region,
        )
        self.alarm_evaluator.start()

    def _client(self, service: str) -> Any:
        import boto3

        make_client: Any = boto3.client  # the service is chosen at run time
        return make_client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.config.region,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        for port, what in (
            (self.config.api_port, "API"),
            (self.config.web_port, "web"),
            (self.config.metrics_port, "metrics"),
        ):
            if port_in_use(port):
                raise RuntimeError(f"the {what} port {port} is taken; choose another")
        self._start_emulator()
        self.env = self._base_env()
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("AWS_")})
        self._cloudwatch = self._client("cloudwatch")
        self._provision()
        self._create_keys()
        self._start_metrics()
        self._start_consumers()
        self.start_api()
        if self.config.serve_web:
            self._start_web()
        self._start_alarm_evaluator()
        return self.describe()

    def supervise(self) -> bool:
        """Restart a consumer that died (as Lambda retries a batch on a fresh instance: it
        resumes from its checkpoint). False when the emulator itself is gone."""
        for name in CONSUMERS:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                log.warning("%s exited with code %s; restarting it", name, process.returncode)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._spawn_consumer(name)
        emulator = self.processes.get("emulator")
        if emulator is not None and emulator.poll() is not None:
            log.error("the emulator exited with code %s; stopping", emulator.returncode)
            return False
        return True

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.api_port}"

    def describe(self) -> dict[str, Any]:
        api_url = self.api_url
        web_url = f"http://{LOOPBACK}:{self.config.web_port}"
        # With reads on Cognito the page signs in (its config.js names the pool); else the
        # read key travels in the URL, as the page expects on a loopback stack.
        signs_in = self.outputs.get("ReadAuth") == "cognito"
        return {
            "api_url": api_url,
            "web_url": web_url if self.config.serve_web else None,
            "dashboard_url": (
                (
                    f"{web_url}/"
                    if signs_in
                    else f"{web_url}/?api={api_url}&key={self.keys.get('read', '')}"
                )
                if self.config.serve_web
                else None
            ),
            "demo_url": f"{web_url}/demo/" if self.config.serve_web else None,
            "graphiql_url": f"{web_url}/graphiql/" if self.config.serve_web else None,
            # Prometheus scrape targets (see the README's scrape config)
            "metrics_urls": {
                "api": f"{api_url}/metrics",
                "consumers": f"http://{LOOPBACK}:{self.config.metrics_port}/metrics",
            },
            "tracker_url": f"{web_url}/cs.js" if self.config.serve_web else None,
            # This stack's own keys (it is on loopback and dies with the emulator).
            "keys": dict(self.keys),
            "endpoint_url": self.endpoint_url,
            "emulator": self.emulator,
            "consumers": self.config.consumers,
            # A KCL worker's environment: tests start more workers with it
            "kcl_env": self.kcl_env() if self.config.consumers == "kcl" else None,
            "resources": self.outputs,
            # "supervisor" is this process: SIGTERM to it stops the stack as Ctrl-C does
            "pids": {
                "supervisor": os.getpid(),
                **{name: process.pid for name, process in self.processes.items()},
            },
            "api_command": self.api_command(),
            "env": {k: v for k, v in self.env.items() if k.startswith(("AWS_", "CLICKSTREAM_"))},
            "logs": str(self.log_dir),
        }

    def stop(self) -> None:
        """Stop in reverse dependency order: API first (no new events), then consumers
        (finishing their batches), then the emulator."""
        if self.alarm_evaluator is not None:
            self.alarm_evaluator.stop()
        if self.web_server is not None:
            self.web_server.shutdown()
            self.web_server.server_close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        for name in ("api", "compactor", *CONSUMERS, "kinesis-h2c", "emulator"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
