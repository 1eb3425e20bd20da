"""MindFu's own REST API as an ``Application``: the CLI's ``--server http://...`` and the third
implementation the congruence suite holds to the in-process and gRPC ones."""

from mindfu_http.client.application import HttpApplication, connect

__all__ = ["HttpApplication", "connect"]
