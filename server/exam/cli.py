import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..accounts.auth import socket_token
from ..accounts.models import User
from ..extensions import db
from . import notify, operations
from .models import Attempt, Exam


@click.group("exam", help="Bài thi.")
def exam() -> None:
    pass


@exam.command("schedule")
@click.argument("exam_id", type=int)
@with_appcontext
def schedule(exam_id):
    n = operations.schedule_exam(db.session.get(Exam, exam_id))
    db.session.commit()
    click.echo(f"{n} attempts")


@exam.command("open")
@click.argument("exam_id", type=int)
@with_appcontext
def open_(exam_id):
    """Open now (from a CLI the start reaches learners through the message queue only)."""
    exam_ = operations.open_exam(exam_id)
    db.session.commit()
    if exam_ is not None:
        notify.exam_started(exam_)
    click.echo("opened" if exam_ else "not opened")


@exam.command("tokens")
@click.argument("exam_id", type=int)
@click.option("--limit", type=int, default=None)
@click.option("--out", type=click.File("w"), default="-")
@with_appcontext
def tokens(exam_id, limit, out):
    """Socket login tokens of the exam's learners, one per line (for load tests)."""
    q = sa.select(User).join(Attempt, Attempt.user_id == User.id).where(Attempt.exam_id == exam_id).order_by(User.id)
    if limit:
        q = q.limit(limit)
    for user in db.session.scalars(q):
        out.write(socket_token(user) + "\n")
