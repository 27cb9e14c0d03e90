"""The protocol choices a result records, in one torch-free place (the leaderboard validator imports them
without paying torch's start-up)."""

LABEL_MODES = ("top1-mapped", "restricted", "superclass-sum")
PREPROCESS_PROTOCOLS = ("paper", "processor")
PRECISIONS = ("no", "bf16", "fp16")
