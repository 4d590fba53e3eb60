"""posts already written are masked again with every common format (spaced, +86, full-width)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

posts = sa.table("posts", sa.column("id", sa.Integer), sa.column("text", sa.Text),
                 sa.column("shown_text", sa.Text), sa.column("personal", sa.String))


def upgrade() -> None:
    # Numbers written as 138-1234-5679 or 110101 19900307 1234 were shown in full to other members
    # and organisers: what they see is computed again (the text as written stays for the record).
    from models.screening import mask_personal
    connection = op.get_bind()
    for post_id, text in connection.execute(sa.select(posts.c.id, posts.c.text)).all():
        shown, kinds = mask_personal(text or "")
        connection.execute(posts.update().where(posts.c.id == post_id).values(
            shown_text=shown[:2000], personal="、".join(kinds)))


def downgrade() -> None:
    pass  # masking more is never undone
