"""gRPC over the MindFu application: servicers and server (``server``), and the client a gateway serves
HTTP through (``client``); the contract is ``proto/mindfu/v1``, the stubs in ``_pb`` are generated."""
