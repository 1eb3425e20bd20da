"""Translation between protobuf messages and domain types, both ways (servicers and the client use it)."""
