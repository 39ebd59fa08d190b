"""What the features assert: integrity (count, checksum, per-key diff), replay (change events
back into a table, commit order), delivery (loss and duplicate audit) and lag (percentiles,
plots)."""
