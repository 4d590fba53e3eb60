"""backups the nightly job made, so that a backup that stops shows

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 21:00:00
"""
from alembic import op
import sqlalchemy as sa

import models.base


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finished_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('host', sa.String(length=80), nullable=False),
    sa.Column('database_file', sa.String(length=400), nullable=False),
    sa.Column('database_bytes', sa.BigInteger(), nullable=False),
    sa.Column('files_file', sa.String(length=400), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backups_finished_at'), ['finished_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backups_finished_at'))
    op.drop_table('backups')
