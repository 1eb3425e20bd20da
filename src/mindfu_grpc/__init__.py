"""gRPC services over the MindFu core (protos in proto/mindfu/v1); servicers arrive with the gRPC issue."""
