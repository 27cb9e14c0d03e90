"""The one model adapter: a uint8 image batch -> the model's preprocessing -> channels-last -> autocast ->
logits -> IN-9 predictions. The prediction loop and the challenge search both score through it, so a model is
run the same way wherever it is scored."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from evaluator.model.labels import Prediction, check_label_mode, logits_to_in9
from evaluator.model.loading import LoadedModel


class Forward:
    """``forward(images) -> Prediction`` for one model, label mode and accelerator.

    ``images`` is a uint8 (N, 3, H, W) tensor (best channels-last) or a list of (3, H, W) tensors of different
    sizes, preprocessed one by one. The model runs channels-last: faster for convolutions on CPU, the same
    predictions.
    """

    def __init__(self, loaded: LoadedModel, label_mode: str, accelerator=None) -> None:
        self.loaded = loaded
        self.label_mode = check_label_mode(label_mode)
        self.accelerator = accelerator
        if accelerator is not None:
            module = accelerator.prepare_model(loaded.model, evaluation_mode=True)
        else:
            module = loaded.model.eval()
        self.module = module.to(memory_format=torch.channels_last)
        self.device = accelerator.device if accelerator is not None else torch.device("cpu")

    def pixel_values(self, images) -> torch.Tensor:
        preprocess = self.loaded.preprocess
        if isinstance(images, torch.Tensor):
            x = preprocess(images)
        else:
            x = torch.cat([preprocess(image[None]) for image in images])
        return x.contiguous(memory_format=torch.channels_last)

    def logits(self, images) -> torch.Tensor:
        autocast = self.accelerator.autocast() if self.accelerator is not None else nullcontext()
        with torch.inference_mode(), autocast:
            return self.module(self.pixel_values(images)).float()

    def __call__(self, images, *, with_scores: bool = True) -> Prediction:
        return logits_to_in9(
            self.logits(images), self.loaded.label_space, self.label_mode, with_scores=with_scores
        )

    def predict(self, images) -> torch.Tensor:
        """Only the (N,) IN-9 predictions (the challenge's question)."""
        return self(images, with_scores=False).pred
