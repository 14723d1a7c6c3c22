"""Messages of in-app training, handled by the App: a trainer event (screens/training.py) and a run's end."""
from __future__ import annotations

from textual.message import Message

from core.train.events import Progress, TrainerEvent


class TrainerEventMessage(Message):
    """A trainer event for one run (posted from the training thread). Progress messages replace older ones."""

    def __init__(self, run_id: str, event: TrainerEvent):
        super().__init__()
        self.run_id = run_id
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return (isinstance(message, TrainerEventMessage) and message.run_id == self.run_id
                and isinstance(message.event, Progress) and isinstance(self.event, Progress))


class TrainingEnded(Message):
    """An in-app run left the trainer (finished, stopped, failed ...)."""

    def __init__(self, run_id: str, state: str, message: str):
        super().__init__()
        self.run_id, self.state, self.message = run_id, state, message

