"""The Hugging Face Space entry point for the IN-9 metric (push this folder as a gradio Space)."""

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load("in9_metric.py")
launch_gradio_widget(module)
