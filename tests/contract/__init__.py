"""The provider contract: one suite every cloud provider passes, run against each cloud's local emulators."""
