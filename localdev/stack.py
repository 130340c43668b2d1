"""``make local``: the whole stack on this machine, on loopback only.

1. an AWS emulator: LocalStack when one answers on localhost:4566, else moto's server
   started here (``localdev/emulator.py``, on 127.0.0.1), or ``AWS_ENDPOINT_URL``;
2. the resources of ``infra/template.yaml``;
3. the consumers, each a process running the Lambda handler behind the event-source runner;
4. the API with ``chalice local``;
5. a static server for the dashboard in ``web/``;
6. Prometheus metrics: the API's at ``/metrics`` on its port, the consumers' (and the
   dead-letter queue's depth) at ``/metrics`` on the metrics port (``localdev/prometheus.py``).

Every child's output passes through the EMF forwarder (metrics to the emulator's CloudWatch,
as CloudWatch Logs does on AWS) into ``.local/logs/``; the consumers' EMF lines also feed the
metrics port. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
CONSUMERS = ("aggregator", "archiver")
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
    # "lambda": each consumer behind the event-source runner; "kcl": each under the KCL's
    # MultiLangDaemon (consumers/kcl_daemon.py), leases in the emulator's DynamoDB.
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def answers(url: str, timeout: float = 0.5, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status < 500)
    except OSError:
        return False


def wait_for(
    url: str,
    timeout: float,
    what: str,
    process: subprocess.Popen[Any] | None = None,
    context: ssl.SSLContext | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}; see its log")
        if answers(url, context=context):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout:.0f} s")


class OutputPump(threading.Thread):
    """Copies a child's output to its log file, forwarding EMF metric lines to CloudWatch and,
    given ``observe``, handing them to it too (the consumers' Prometheus metrics)."""

    def __init__(
        self,
        name: str,
        stream: IO[str],
        log_path: Path,
        cloudwatch: Any,
        observe: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(name=f"pump:{name}", daemon=True)
        self.stream = stream
        self.log_path = log_path
        self.cloudwatch = cloudwatch
        self.observe = observe

    def run(self) -> None:
        forward = _emf_forwarder()
        with self.log_path.open("a", encoding="utf-8") as sink:
            for line in self.stream:
                sink.write(line)
                sink.flush()
                if forward is not None and line.lstrip().startswith("{"):
                    with contextlib.suppress(Exception):
                        forward(line, self.cloudwatch)
                    if self.observe is not None:
                        with contextlib.suppress(Exception):
                            self.observe(line)


def _emf_forwarder() -> Any:
    try:
        from localdev.emf import forward_emf_line
    except ImportError:
        return None
    return forward_emf_line


# GraphiQL at /graphiql/: its page, and the pinned UMD builds it loads (`make graphiql`).
GRAPHIQL_MODULES = ROOT / "tools" / "graphiql" / "node_modules"
GRAPHIQL_FILES = {
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
}


class QuietStaticHandler(SimpleHTTPRequestHandler):
    # Served as /config.js when set: the deploy-time file's shape, for a stack whose reads
    # are on Cognito (the page then signs readers in to the emulator's user pool).
    config_js: bytes | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: " + format, *args)

    # The tracker at /cs.js, and the demo shop (a single-page app: every /demo/ path is its
    # page) with this stack's API and write key in its snippet.
    demo_values: dict[str, str] | None = None

    def _generated(self) -> tuple[bytes, str] | None:
        path = self.path.split("?", 1)[0]
        if self.config_js is not None and path == "/config.js":
            return self.config_js, "text/javascript; charset=utf-8"
        if path == "/cs.js":
            return (ROOT / "tracker" / "cs.js").read_bytes(), "text/javascript; charset=utf-8"
        if self.demo_values is not None and path in ("/graphiql", "/graphiql/"):
            page = (ROOT / "tools" / "graphiql" / "index.html").read_text()
            for name, value in self.demo_values.items():
                page = page.replace("{{" + name + "}}", value)
            return page.encode(), "text/html; charset=utf-8"
        if path.startswith("/graphiql/") and path[len("/graphiql/") :] in GRAPHIQL_FILES:
            file = GRAPHIQL_MODULES / GRAPHIQL_FILES[path[len("/graphiql/") :]]
            kind = "text/css" if file.suffix == ".css" else "text/javascript"
            return file.read_bytes(), f"{kind}; charset=utf-8"
        if self.demo_values is not None and (path == "/demo" or path.startswith("/demo/")):
            page = (ROOT / "tracker" / "demo" / "index.html").read_text()
            for name, value in self.demo_values.items():
                page = page.replace("{{" + name + "}}", value)
            return page.encode(), "text/html; charset=utf-8"
        return None

    def _send_generated(self, body: bool) -> bool:
        generated = self._generated()
        if generated is None:
            return False
        content, content_type = generated
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)
        return True

    def do_GET(self) -> None:
        if not self._send_generated(body=True):
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._send_generated(body=False):
            super().do_HEAD()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class LocalStack:
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
        """A write, a read and an admin key for this stack (printed in the banner). Fixed
        ones come from ``CLICKSTREAM_LOCAL_WRITE_KEY`` / ``_READ_KEY`` / ``_ADMIN_KEY``."""
        from clickstream.keys import create_key, get_key

        dynamodb = self._client("dynamodb")
        table = self.env.get("CLICKSTREAM_KEYS_TABLE", "clickstream-keys")
        for role in ("write", "read", "admin"):
            wanted = os.environ.get(f"CLICKSTREAM_LOCAL_{role.upper()}_KEY") or None
            if wanted and get_key(dynamodb, table, wanted) is not None:
                self.keys[role] = wanted
                continue
            self.keys[role], _ = create_key(
                dynamodb, table, role=role, site="localhost", name="make local", key=wanted
            )

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
        if self.config.consumers == "kcl":
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
            "pids": {name: process.pid for name, process in self.processes.items()},
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
        for name in ("api", *CONSUMERS, "kinesis-h2c", "emulator"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def print_banner(info: dict[str, Any]) -> None:
    keys = info.get("keys") or {}
    lines = [
        "",
        "clickstream local stack is up",
        f"  API        {info['api_url']}",
        f"  dashboard  {info['dashboard_url']}",
        f"  demo shop  {info['demo_url']}   (instrumented with the tracker, /cs.js)",
        f"  graphiql   {info['graphiql_url']}   (POST {info['api_url']}/graphql)",
        f"  emulator   {info['endpoint_url']} ({info['emulator']})",
        f"  consumers  {info['consumers']}"
        + (
            "   (the KCL's MultiLangDaemon, one per consumer)" if info["consumers"] == "kcl" else ""
        ),
        f"  metrics    {info['metrics_urls']['api']}   (Prometheus: the API)",
        f"             {info['metrics_urls']['consumers']}   (the consumers, the DLQ)",
        f"  logs       {info['logs']}/",
        f"  write key  {keys.get('write', '')}   (X-Write-Key, or ?key= for beacons)",
        f"  read key   {keys.get('read', '')}   (X-Api-Key)",
        f"  admin key  {keys.get('admin', '')}   (X-Api-Key; DELETE /users/{{user_id}})",
        "",
        f"  try: curl -s -X POST {info['api_url']}/track -H 'Content-Type: application/json' \\",
        f"         -H 'X-Write-Key: {keys.get('write', '')}' \\",
        '         -d \'{"event_type":"page_view","user_id":"u1","page_url":"/home"}\'',
        f"       curl -s -H 'X-Api-Key: {keys.get('read', '')}' {info['api_url']}/stats",
        f"       curl -s -X POST {info['api_url']}/graphql -H 'Content-Type: application/json' \\",
        f"         -H 'X-Api-Key: {keys.get('read', '')}' \\",
        '         -d \'{ "query": "{ pageViews(pageURL: \\"/home\\") }" }\'',
        "",
        "Ctrl-C stops everything.",
    ]
    resources = info.get("resources") or {}
    if resources.get("ReadAuth") == "cognito":  # reads need a user of the emulator's pool
        pool_id = str(resources.get("UserPoolArn", "")).rsplit("/", 1)[-1]
        lines[-2:-2] = [
            f"  reads: Cognito user pool {pool_id} (the read key above is not accepted)",
            f"  a reader: aws --endpoint-url {info['endpoint_url']} \\",
            "         cognito-idp admin-create-user \\",
            f"         --user-pool-id {pool_id} --username you@example.com \\",
            "         --temporary-password 'Temporary-Passw0rd'   (then sign in on the dashboard)",
            "",
        ]
    print("\n".join(lines), flush=True)
    print("READY " + json.dumps(info), flush=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stack = LocalStack(StackConfig.from_env())
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        print_banner(stack.start())
        while not stopped.wait(0.5):
            if not stack.supervise():
                stopped.set()
    except Exception as exc:
        log.error("local stack failed: %s", exc)
        stack.stop()
        sys.exit(1)
    stack.stop()
    log.info("local stack stopped")


if __name__ == "__main__":
    main()
