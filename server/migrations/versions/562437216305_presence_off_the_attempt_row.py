"""presence off the attempt row

The answer writer locks attempt rows; a presence refresh of every connected learner on
the same rows every few seconds made both wait on each other (docs/benchmarks.md).

Revision ID: 562437216305
Revises: d4aff3479d56
Create Date: 2026-12-03 17:31:02.615648

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '562437216305'
down_revision = 'd4aff3479d56'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('hub_process',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_process'))
    )
    op.create_table('attempt_presence',
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('hub_id', sa.String(length=32), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempt.id'], name=op.f('fk_attempt_presence_attempt_id_attempt'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('attempt_id', 'hub_id', name=op.f('pk_attempt_presence'))
    )
    with op.batch_alter_table('attempt_presence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_presence_hub_id'), ['hub_id'], unique=False)

    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')



def downgrade():
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('attempt_presence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_presence_hub_id'))

    op.drop_table('attempt_presence')
    op.drop_table('hub_process')
