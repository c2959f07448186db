"""Per-queue settings (group aggregation and flow control), stored in the queue's settings
hash and read by the scripts that apply them."""
