"""What the features assert: integrity (count, checksum, per-key diff), delivery (loss and
duplicate audit) and lag (percentiles, plots)."""
