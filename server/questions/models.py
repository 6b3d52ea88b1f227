"""The question bank: topics and single-answer multiple-choice questions."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..core.timeutil import now_utc
from ..extensions import db


class Topic(db.Model):
    __tablename__ = "topic"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: NFC-normalised; unique so imports can refer to a topic by its name.
    name: so.Mapped[str] = so.mapped_column(sa.String(300), unique=True)
    position: so.Mapped[int] = so.mapped_column(default=0)

    questions: so.WriteOnlyMapped["Question"] = so.relationship(back_populates="topic")


class Question(db.Model):
    __tablename__ = "question"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    topic_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("topic.id"), index=True)
    #: NFC-normalised stem.
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    #: where it came from: "xlsx:row 12", "gift:…", "ui".
    source: so.Mapped[Optional[str]] = so.mapped_column(sa.String(300))
    #: a retired question stays for the exams that used it but is not drawn again.
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)

    topic: so.Mapped[Topic] = so.relationship(back_populates="questions")
    choices: so.Mapped[list["Choice"]] = so.relationship(
        back_populates="question", order_by="Choice.position", cascade="all, delete-orphan"
    )

    @property
    def correct_choice(self) -> Optional["Choice"]:
        return next((c for c in self.choices if c.is_correct), None)


class Choice(db.Model):
    __tablename__ = "choice"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    question_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("question.id"), index=True)
    position: so.Mapped[int] = so.mapped_column()
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    is_correct: so.Mapped[bool] = so.mapped_column(default=False)

    question: so.Mapped[Question] = so.relationship(back_populates="choices")
