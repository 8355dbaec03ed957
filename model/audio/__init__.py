"""Audio room: decoding files to 16 kHz mono, the signal facts every stage shares (rate,
chunking, levels), the log-mel front end and the vocal-activity rule (docs/design.md, Signal)."""
