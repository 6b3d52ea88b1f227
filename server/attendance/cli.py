"""`flask snapshots purge [--days N]`: the retention period for camera images.

Camera images are personal data, kept only as long as needed: run it daily (cron or a
systemd timer). It deletes the snapshots older than SNAPSHOT_RETENTION_DAYS (default 90)
with their files, sets the `snapshot_id` of their flags to NULL (flags and the decisions
taken on them stay), and deletes the camera histories idle that long (they hold a small
grey thumbnail of the last frame).
"""
import click
from flask.cli import with_appcontext
from flask_babel import gettext as _

from . import snapshots


@click.group("snapshots", help="Ảnh camera điểm danh và giám sát.")
def group() -> None:
    pass


@group.command("purge")
@click.option("--days", type=click.FloatRange(min=0), default=None,
              help="Xoá ảnh cũ hơn số ngày này (mặc định: SNAPSHOT_RETENTION_DAYS).")
@with_appcontext
def purge(days):
    """Xoá ảnh camera và lịch sử camera quá thời hạn lưu giữ."""
    days = snapshots.setting("SNAPSHOT_RETENTION_DAYS") if days is None else days
    counts = snapshots.purge(days)
    click.echo(_("Đã xoá %(s)d ảnh (%(f)d tệp, %(d)d thư mục ngày) và %(h)d lịch sử camera cũ hơn %(days)s ngày.",
                 s=counts["snapshots"], f=counts["files"], d=counts["folders"], h=counts["histories"], days=f"{days:g}"))
