"""Console: study materials (editor with preview, attachments, review and publishing)."""
from __future__ import annotations

import json
import os
import uuid

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from models.accounts import audit
from models.members import STAGES
from models.study import MATERIAL_STATES, Attachment, Material
from models.timeutil import utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.console.forms import db_ids
from wxbot.console.members import branches_in_scope
from wxbot.db import db
from wxbot.study.views import render_body, upload_dir

ATTACHMENT_TYPES = (".pdf", ".doc", ".docx", ".ppt", ".pptx")


def scoped_materials():
    """An organiser sees the materials of their subtree and the school-wide ones (read only)."""
    return g.scope.filter(select(Material), Material.org_unit_id, school_wide=True)


def material_in_scope(material_id: int, editing: bool = False) -> Material:
    material = db.session.scalar(scoped_materials().where(Material.id == material_id))
    if material is None or (editing and not g.scope.allows_unit(material.org_unit_id)):
        abort(404)
    return material


@bp.get("/materials")
@login_required
def materials():
    rows = db.session.scalars(scoped_materials().order_by(Material.id.desc()).limit(200)).all()
    return render_template("console/materials.html", rows=rows)


@bp.route("/materials/new", methods=["GET", "POST"])
@bp.route("/materials/<int:material_id>", methods=["GET", "POST"])
@login_required
def material_edit(material_id: int | None = None):
    material = material_in_scope(material_id, editing=request.method == "POST") if material_id else None
    if request.method == "POST":
        form = request.form
        title = form.get("title", "").strip()
        if not title:
            flash("标题不能为空。", "danger")
            return redirect(request.url)
        if material is None:
            material = Material(author=current_user.username, org_unit_id=current_user.org_unit_id, status="draft")
            db.session.add(material)
        before = {"标题": material.title, "状态": material.status_label} if material.id else None
        material.title, material.summary = title[:100], form.get("summary", "").strip()[:300]
        material.body, material.cover = form.get("body", ""), form.get("cover", "").strip()[:500]
        material.source, material.tags = form.get("source", "").strip()[:100], form.get("tags", "").strip()[:200]
        material.audience = json.dumps(_audience_from(form), ensure_ascii=False)
        if material.status != "draft":  # a changed text must be reviewed again
            material.status, material.reviewer, material.reviewed_at = "draft", "", None
        db.session.flush()
        audit(db.session, current_user, "update" if before else "create", "material", material.id,
              f"{'修改' if before else '新建'}学习材料《{material.title}》", before, {"标题": material.title},
              org_unit_id=material.org_unit_id)
        db.session.commit()
        flash("已保存为草稿；审核并发布后成员才能看到。", "success")
        return redirect(url_for("console.material_edit", material_id=material.id))
    spec = material.audience_spec() if material else {}
    return render_template("console/material.html", material=material, spec=spec, branches=branches_in_scope(),
                           stages=STAGES, preview=render_body(material.body) if material else "",
                           states=MATERIAL_STATES,
                           editable=material is None or g.scope.allows_unit(material.org_unit_id),
                           max_mb=services.settings().study.attachment_max_bytes // (1024 * 1024))


def _audience_from(form) -> dict:
    units = [u for u in db_ids(form.getlist("units")) if g.scope.allows_unit(u)]
    if not units and not g.scope.everything and current_user.org_unit_id:
        units = [current_user.org_unit_id]  # an organiser's material stays within their subtree
    return {"units": units, "stages": [s for s in form.getlist("stages") if s in STAGES]}


@bp.post("/materials/<int:material_id>/<any(review, publish, withdraw):action>")
@login_required
def material_state(material_id: int, action: str):
    """draft -> reviewed -> published; withdraw takes a material back to draft."""
    material = material_in_scope(material_id, editing=True)
    before = {"状态": material.status_label}
    if action == "review":
        if material.status != "draft":
            flash("只有草稿需要审核。", "warning")
            return redirect(url_for("console.material_edit", material_id=material_id))
        if services.settings().study.review_by_other and material.author == current_user.username:
            flash("按照规定，材料需要由作者以外的人审核。", "danger")
            return redirect(url_for("console.material_edit", material_id=material_id))
        material.status, material.reviewer, material.reviewed_at = "reviewed", current_user.username, utcnow()
    elif action == "publish":
        if material.status != "reviewed":
            flash("材料审核通过后才能发布。", "danger")
            return redirect(url_for("console.material_edit", material_id=material_id))
        material.status, material.published_at = "published", utcnow()
    else:
        material.status, material.reviewer, material.reviewed_at = "draft", "", None
    audit(db.session, current_user, action, "material", material.id,
          f"学习材料《{material.title}》：{material.status_label}",
          before, {"状态": material.status_label}, org_unit_id=material.org_unit_id)
    db.session.commit()
    flash(f"《{material.title}》{material.status_label}。", "success")
    return redirect(url_for("console.material_edit", material_id=material_id))


@bp.post("/materials/<int:material_id>/attachments")
@login_required
def material_attach(material_id: int):
    material = material_in_scope(material_id, editing=True)
    upload = request.files.get("file")
    limit = services.settings().study.attachment_max_bytes
    if upload is None or not upload.filename:
        flash("请选择文件。", "danger")
    elif not upload.filename.lower().endswith(ATTACHMENT_TYPES):
        flash("只能上传 PDF、Word 或 PowerPoint 文件。", "danger")
    else:
        data = upload.read(limit + 1)
        if len(data) > limit:
            flash(f"文件超过 {limit // (1024 * 1024)} MB，请压缩后再上传。", "danger")
        else:
            os.makedirs(upload_dir(), exist_ok=True)
            stored = uuid.uuid4().hex + os.path.splitext(upload.filename)[1].lower()
            with open(os.path.join(upload_dir(), stored), "wb") as f:
                f.write(data)
            db.session.add(Attachment(material_id=material.id, filename=os.path.basename(upload.filename)[:200],
                                      stored_name=stored, size=len(data)))
            audit(db.session, current_user, "create", "attachment", material.id,
                  f"《{material.title}》上传附件 {upload.filename}", org_unit_id=material.org_unit_id)
            db.session.commit()
            flash("附件已上传。", "success")
    return redirect(url_for("console.material_edit", material_id=material_id))
