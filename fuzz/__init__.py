"""Coverage-guided fuzzers (atheris) for the server and client cores; see README.md."""
