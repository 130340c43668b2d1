"""Run a deployed function's package as Lambda would, where there is no Lambda runtime; and a
loopback X-Ray daemon that receives its segments (docs/local-stack.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

# Runs inside the function's process: the handler's module from the package, one JSON request
# per stdin line, one JSON answer per line on a separate pipe (stdout carries the logs).
_BOOTSTRAP = r"""
import importlib, json, os, sys, time, traceback, uuid
task_root, handler, answers_fd, *layers = sys.argv[1:]
sys.path[:0] = [task_root, *layers]
module_name, function_name = handler.rsplit(".", 1)
answers = os.fdopen(int(answers_fd), "w")
try:
    function = getattr(importlib.import_module(module_name), function_name)
except Exception as error:  # an import error is Lambda's Runtime.ImportModuleError
    answers.write(json.dumps({"init_error": f"{type(error).__name__}: {error}"}) + "\n")
    answers.flush()
    raise SystemExit(1)
answers.write(json.dumps({"ready": True}) + "\n")
answers.flush()

class Context:
    def __init__(self, request_id, timeout_s):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["CLICKSTREAM_SANDBOX_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = time.monotonic() + timeout_s
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

for line in sys.stdin:
    request = json.loads(line)
    os.environ["_X_AMZN_TRACE_ID"] = request["trace_header"]
    context = Context(request["request_id"], request["timeout_s"])
    try:
        answer = {"result": function(request["event"], context)}
    except Exception as error:
        answer = {"error": type(error).__name__, "message": str(error),
                  "trace": traceback.format_exc()}
    answers.write(json.dumps(answer, default=str) + "\n")
    answers.flush()
"""


class InvocationError(RuntimeError):
    """The handler raised (Lambda's "Unhandled" function error) or could not be loaded."""


# What the Lambda Python runtime itself provides (its /var/runtime): the AWS SDK and what the
# SDK needs. Everything else must be in the package or a layer.
LAMBDA_RUNTIME_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
)


def linked_modules(modules: tuple[str, ...], into: Path) -> Path:
    """A directory holding ``modules`` as this interpreter has them (symlinks): the runtime's
    SDK, or a layer's ``python/`` (e.g. pyarrow, which the deployment takes from AWS's
    managed layer and which this machine has at the pinned version)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise InvocationError(f"{name} is not installed here")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        target = into / source.name
        if not target.exists():
            target.symlink_to(source)
    return into


def unpack(package: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(into)
    return into


class DeployedFunction:
    def __init__(
        self,
        configuration: dict[str, Any],
        task_root: Path,
        layer_paths: list[Path],
        *,
        endpoint_url: str,
        xray_daemon: str,
        credentials: tuple[str, str] = ("testing", "testing"),
        extra_environment: dict[str, str] | None = None,
    ) -> None:
        self.name = str(configuration["FunctionName"])
        self.timeout_s = float(configuration.get("Timeout", 3))
        region = str(configuration["FunctionArn"]).split(":")[3]
        runtime = str(configuration.get("Runtime", "python3"))
        environment = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "LANG", "HOME", "TMPDIR")
        }
        environment.update(configuration.get("Environment", {}).get("Variables", {}))
        environment.update(
            {
                # what the Lambda runtime sets
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(configuration.get("Version", "$LATEST")),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"rehearsal/[$LATEST]{secrets.token_hex(16)}",
                "AWS_ACCESS_KEY_ID": credentials[0],
                "AWS_SECRET_ACCESS_KEY": credentials[1],
                "LAMBDA_TASK_ROOT": str(task_root),
                "_HANDLER": str(configuration["Handler"]),
                "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "TZ": ":UTC",
                "PYTHONDONTWRITEBYTECODE": "1",
                # Lambda's runtime sends each line to the log as it is written; a pipe would
                # hold the last invocation's metrics line until the next one.
                "PYTHONUNBUFFERED": "1",
                # where Lambda would reach AWS, the emulator
                "AWS_ENDPOINT_URL": endpoint_url,
                "CLICKSTREAM_SANDBOX_FUNCTION_ARN": str(configuration["FunctionArn"]),
                **(extra_environment or {}),
            }
        )
        answers_read, answers_write = os.pipe()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-S",  # no site-packages: the package and its layers only
                "-c",
                _BOOTSTRAP,
                str(task_root),
                str(configuration["Handler"]),
                str(answers_write),
                *(str(path) for path in layer_paths),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=task_root,
            pass_fds=(answers_write,),
            text=True,
        )
        os.close(answers_write)
        self._answers = os.fdopen(answers_read)
        self.logs: list[str] = []
        self._log_reader = threading.Thread(target=self._read_logs, daemon=True)
        self._log_reader.start()
        first = self._answer()
        if "init_error" in first:
            self.close()
            raise InvocationError(f"{self.name} failed to load: {first['init_error']}")

    def _read_logs(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.logs.append(line.rstrip("\n"))

    def _answer(self) -> dict[str, Any]:
        line = self._answers.readline()
        if not line:
            time.sleep(0.2)  # let the log reader catch the traceback
            tail = "\n".join(self.logs[-20:])
            raise InvocationError(f"{self.name} exited ({self.process.poll()}):\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke with ``event``; returns the handler's result, raises InvocationError."""
        assert self.process.stdin is not None
        trace_id = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        request = {
            "event": event,
            "request_id": secrets.token_hex(16),
            "timeout_s": self.timeout_s,
            "trace_header": f"Root={trace_id};Parent={secrets.token_hex(8)};Sampled=1",
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if "error" in answer:
            raise InvocationError(f"{self.name}: {answer['error']}: {answer['message']}")
        return answer["result"]

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._answers.close()


class XRayDaemon:
    """Receives X-Ray SDK segments on a loopback UDP port (``{"format":"json",...}\\n{doc}``)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                continue
            _, _, body = datagram.decode("utf-8", "replace").partition("\n")
            try:
                self.documents.append(json.loads(body))
            except ValueError:
                continue

    def traced_calls(self) -> set[tuple[str, str]]:
        """(service, operation) of every AWS call subsegment received, e.g. ("Kinesis",
        "PutRecords"), however deeply nested."""
        found: set[tuple[str, str]] = set()
        pending = list(self.documents)
        while pending:
            document = pending.pop()
            pending.extend(document.get("subsegments", []))
            operation = document.get("aws", {}).get("operation")
            if document.get("namespace") == "aws" and operation:
                found.add((str(document.get("name")), str(operation)))
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()
