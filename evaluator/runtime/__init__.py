"""Where and how batches run: decoding (``decode``), CPU inference streams (``streams``), the accelerate
set-up (``accelerator``), opt-in CPU process tuning (``cpu``) and the run's environment record
(``environment``)."""
