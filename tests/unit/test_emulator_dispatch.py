"""The emulator's remembered dispatch (localdev.emulator.dispatch_by_remembered_host) finds
the backend moto's own dispatch finds, and works it out once per host."""

from __future__ import annotations

from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from localdev.emulator import dispatch_by_remembered_host

HOSTS = [
    None,
    "moto_api",
    "dynamodb",
    "kinesis.us-east-1.amazonaws.com",
    "sqs.eu-west-1.amazonaws.com",
    "s3.amazonaws.com",
    "my-bucket.s3.amazonaws.com",
    "logs.us-east-1.amazonaws.com",
    "cloudformation.us-east-1.amazonaws.com",
    "nothing.example",
]


def test_each_host_goes_to_motos_own_backend_and_is_worked_out_once(monkeypatch):
    dispatcher = DomainDispatcherApplication(create_app=lambda backend: None)  # type: ignore[arg-type,return-value]
    expected = [dispatcher.get_backend_for_host(host) for host in HOSTS]
    assert "kinesis" in expected and "s3" in expected

    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        DomainDispatcherApplication.get_backend_for_host,
    )
    monkeypatch.delattr(DomainDispatcherApplication, "_clickstream_remembers_hosts", raising=False)
    dispatch_by_remembered_host()
    listed = []
    modules = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listed.append(1) or modules())
    assert [dispatcher.get_backend_for_host(host) for host in HOSTS] == expected
    first = len(listed)
    assert [dispatcher.get_backend_for_host(host) for host in HOSTS * 3] == expected * 3
    assert len(listed) == first  # nothing listed again
