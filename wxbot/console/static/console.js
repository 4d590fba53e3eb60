// Console behaviour shared by every page (no inline handlers: the Content-Security-Policy forbids them).
(function () {
  // A form or button with data-confirm asks once before the request is sent.
  document.addEventListener("submit", function (event) {
    var button = event.submitter, form = event.target;
    var message = (button && button.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();

// Pickers: ticking an item adds its id to the field it belongs to, unticking removes it; the filter
// narrows the list. The field keeps the order the ids were picked in.
document.querySelectorAll("details.picker").forEach((picker) => {
  const field = document.getElementById(picker.dataset.for);
  const ids = () => field.value.split(/[\s,，、;；]+/).filter(Boolean);
  const boxes = Array.from(picker.querySelectorAll("input[type=checkbox]"));
  const sync = () => { const chosen = new Set(ids()); boxes.forEach((box) => { box.checked = chosen.has(box.value); }); };
  boxes.forEach((box) => box.addEventListener("change", () => {
    const kept = ids().filter((id) => id !== box.value);
    if (box.checked) kept.push(box.value);
    field.value = kept.join(", ");
  }));
  field.addEventListener("input", sync);
  picker.querySelector(".picker-filter").addEventListener("input", (event) => {
    const wanted = event.target.value.trim();
    picker.querySelectorAll(".picker-item").forEach((item) => { item.hidden = wanted && !item.textContent.includes(wanted); });
  });
  sync();
});

// A cover picture chosen in the form is uploaded at once; its public address fills the cover field.
const coverFile = document.getElementById("cover-file");
if (coverFile) {
  coverFile.addEventListener("change", async () => {
    const note = document.getElementById("cover-note"), file = coverFile.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("cover", file);
    const token = document.querySelector("input[name=csrf_token]").value;
    note.textContent = "正在上传…";
    const res = await fetch(coverFile.closest("form").dataset.coverUpload || "/admin/covers",
                            {method: "POST", body, headers: {"X-CSRFToken": token}});
    const answer = await res.json().catch(() => ({error: "上传失败，请稍后再试。"}));
    if (answer.url) { document.getElementById("cover").value = answer.url; note.textContent = "已上传。"; }
    else { note.textContent = answer.error; }
  });
}
