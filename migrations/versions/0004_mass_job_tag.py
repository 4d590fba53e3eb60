"""mass jobs remember the tag made for a mass send by tag

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mass_jobs') as batch:
        batch.add_column(sa.Column('tag_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mass_jobs') as batch:
        batch.drop_column('tag_id')
