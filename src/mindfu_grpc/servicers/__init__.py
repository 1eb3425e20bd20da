"""The gRPC servicers: each translates messages to application calls and back, and nothing more."""
