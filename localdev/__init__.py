"""The local stack: an AWS emulator on loopback, the resources from infra/, the Chalice API,
and the Lambda consumers behind an event-source runner."""
