"""Suite-wide settings."""

import os

# gRPC's C core logs connection events (GOAWAY when an emulator stops) at info level to stderr.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
