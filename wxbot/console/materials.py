"""Console: study materials (editor with preview, attachments, review and publishing)."""
from __future__ import annotations

import json
import os
import uuid

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from models.accounts import audit
from models.members import STAGES
from models.orgtree import tree_rows
from models.study import (
    MATERIAL_ACTIONS,
    Attachment,
    Material,
    ReviewError,
    back_to_draft_on_change,
    material_actions,
    take_action,
)
from models.timeutil import utcnow
from wxbot import services
from wxbot.console import bp
from wxbot.console.forms import db_ids
from wxbot.db import db
from wxbot.screeninglists import refused_publication
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


def review_queue(query):
    """Materials waiting for this account's review: submitted, in its scope, not its own when
    study.review_by_other says authors may not approve their own."""
    query = g.scope.filter(query.where(Material.status == "submitted"), Material.org_unit_id)
    if services.settings().study.review_by_other:
        query = query.where(Material.author != current_user.username)
    return query


@bp.app_context_processor
def pending_reviews():
    """The console's notice to reviewers: how many materials wait for them (shown in the menu)."""
    from flask import request as current_request
    if not current_request.path.startswith("/admin") or not current_user.is_authenticated or "scope" not in g:
        return {}
    return {"pending_reviews": db.session.scalar(review_queue(select(func.count()).select_from(Material))) or 0}


@bp.get("/materials")
@login_required
def materials():
    """All materials in scope, or (?status=submitted) the queue of those waiting for this account's review."""
    waiting = request.args.get("status") == "submitted"
    query = review_queue(select(Material)) if waiting else scoped_materials()
    rows = db.session.scalars(query.order_by(Material.id.desc()).limit(200)).all()
    return render_template("console/materials.html", rows=rows, waiting=waiting)


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
        material.audience = json.dumps(audience_from(form), ensure_ascii=False)
        if db.session.is_modified(material):
            back_to_draft_on_change(material)
        db.session.flush()
        audit(db.session, current_user, "update" if before else "create", "material", material.id,
              f"{'修改' if before else '新建'}学习材料《{material.title}》", before, {"标题": material.title},
              org_unit_id=material.org_unit_id)
        db.session.commit()
        if material.status == "draft":
            flash("已保存为草稿；提交审核、审核通过后成员才能看到。", "success")
        else:
            flash("已保存，没有改动。", "success")
        return redirect(url_for("console.material_edit", material_id=material.id))
    spec = material.audience_spec() if material else {}
    editable = material is None or g.scope.allows_unit(material.org_unit_id)
    actions = material_actions(material, current_user.username, editable, services.settings().study.review_by_other
                               ) if material else []
    return render_template("console/material.html", material=material, spec=spec, units=units_in_scope(),
                           stages=STAGES, preview=render_body(material.body) if material else "",
                           editable=editable, actions=actions, labels=MATERIAL_ACTIONS,
                           max_mb=services.settings().study.attachment_max_bytes // (1024 * 1024))


def units_in_scope():
    """(unit, depth) of every unit the account may address, colleges and branches (the school is
    "no unit": everyone)."""
    return [(unit, depth) for unit, depth, _n in tree_rows(db.session, g.scope.unit_ids) if unit.kind != "school"]


def audience_from(form) -> dict:
    units = [u for u in db_ids(form.getlist("units")) if g.scope.allows_unit(u)]
    if not units and not g.scope.everything and current_user.org_unit_id:
        units = [current_user.org_unit_id]  # an organiser's material stays within their subtree
    return {"units": sorted(units), "stages": [s for s in STAGES if s in form.getlist("stages")]}


@bp.post("/materials/<int:material_id>/<any(submit, approve, return, withdraw):action>")
@login_required
def material_state(material_id: int, action: str):
    """One step of draft -> submitted -> published (or back): only the steps this account may take."""
    material = material_in_scope(material_id, editing=True)
    allowed = material_actions(material, current_user.username, True, services.settings().study.review_by_other)
    if action not in allowed:
        flash("现在不能对这篇材料这样操作（作者不能审核自己的材料，或者它已经不在这个状态）。", "warning")
        return redirect(url_for("console.material_edit", material_id=material_id))
    before = {"状态": material.status_label}
    if action in ("submit", "approve"):
        refused = refused_publication(f"{material.title}\n{material.summary}\n{material.body}", request.form)
        if refused:
            flash(refused, "danger")
            return redirect(url_for("console.material_edit", material_id=material_id))
    try:
        take_action(material, action, current_user.username, request.form.get("note", ""), utcnow())
    except ReviewError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("console.material_edit", material_id=material_id))
    audit(db.session, current_user, action, "material", material.id,
          f"学习材料《{material.title}》：{MATERIAL_ACTIONS[action]}", before,
          {"状态": material.status_label, "说明": material.review_note}, org_unit_id=material.org_unit_id)
    db.session.commit()
    flash(f"《{material.title}》：{MATERIAL_ACTIONS[action]}。", "success")
    return redirect(url_for("console.material_edit", material_id=material_id))


@bp.post("/covers")
@login_required
def cover_upload():
    """A cover picture from the organiser's computer or phone: its public address, for the form."""
    from wxbot.covers import CoverRefused, store_cover
    from wxbot.links import page_url
    upload = request.files.get("cover")
    if upload is None or not upload.filename:
        return jsonify({"error": "请选择图片。"}), 400
    limit = services.settings().study.cover_max_bytes
    try:
        name = store_cover(upload.read(limit + 1), limit)
    except CoverRefused as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"url": page_url(current_app, f"/covers/{name}")})


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
