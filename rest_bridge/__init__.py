"""The REST bridge: HTTP/JSON in front of the gRPC services, routes read from the protos."""
