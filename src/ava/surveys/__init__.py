"""Survey benchmarks built from raw Pew ATP files: questions, groups, weighted distributions."""
