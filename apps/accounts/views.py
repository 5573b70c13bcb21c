"""Teachers' class pages and students' sign-up with a join code."""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webchat.forms import form_add_service_errors
from webchat.spreadsheet import csv_row

from .forms import ClassCreateForm, ClassSettingsForm, CoTeacherForm, JoinCodeForm, RegisterForm, RosterImportForm
from .models import User
from .selectors import (
    classroom_for_join_code,
    classroom_for_student,
    classroom_get_for_teacher,
    classroom_student_get,
    classroom_students,
    classrooms_for_teacher,
    join_link_qr_svg,
    usernames_locked_out,
)
from .services import (
    RosterError,
    classroom_archive,
    classroom_create,
    classroom_settings_set,
    classroom_teacher_add,
    join_code_expire,
    join_code_regenerate,
    passwords_reset,
    roster_import,
    roster_parse,
    student_register,
    student_remove,
    student_unlock,
    user_theme_set,
)


def _teacher_only(user: User) -> None:
    if not user.may_teach:
        raise PermissionDenied


def _passwords_csv(rows: list[tuple[str, str, str]], filename: str) -> HttpResponse:
    """Generated passwords, handed back once as a download; they are stored only hashed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["username", "display_name", "password"])
    writer.writerows(csv_row(row) for row in rows)
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@login_required
def classes_page(request: HttpRequest) -> HttpResponse:
    _teacher_only(request.user)
    form = ClassCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = classroom_create(teacher=request.user, name=form.cleaned_data["name"])
        return redirect("class-settings", classroom_id=classroom.pk)
    show_archived = request.GET.get("archived") == "1"
    classrooms = classrooms_for_teacher(user=request.user).filter(archived=show_archived).prefetch_related("teachers")
    return render(
        request,
        "accounts/classes.html",
        {"classrooms": classrooms, "form": form, "show_archived": show_archived},
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
def class_settings(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    initial = {
        "name": classroom.name,
        "system_prompt": classroom.system_prompt,
        "max_reply_tokens": classroom.max_reply_tokens,
        "teacher_can_read": classroom.teacher_can_read,
        "allow_student_keys": classroom.allow_student_keys,
    }
    form = ClassSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        classroom_settings_set(
            classroom=classroom,
            name=data["name"],
            system_prompt=data["system_prompt"],
            max_reply_tokens=data["max_reply_tokens"],
            teacher_can_read=data["teacher_can_read"],
            allow_student_keys=data["allow_student_keys"],
        )
        messages.success(request, _("Class settings saved."))
        return redirect("class-settings", classroom_id=classroom.pk)
    # An expired code's link and QR code let no one in: not shown to be projected.
    join_url = (
        request.build_absolute_uri(f"{reverse('register')}?{urlencode({'code': classroom.join_code})}")
        if classroom.join_code and not classroom.join_code_expired
        else ""
    )
    return render(
        request,
        "accounts/class_settings.html",
        {
            "classroom": classroom,
            "form": form,
            "co_teacher_form": CoTeacherForm(),
            "join_form": JoinCodeForm(),
            "join_url": join_url,
            # Built here from the class's own code and this site's address: safe to inline.
            "join_qr": mark_safe(join_link_qr_svg(url=join_url, title=_("QR code of the join link")))
            if join_url
            else "",
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
def class_action(request: HttpRequest, classroom_id: int, action: str) -> HttpResponse:
    """The settings page's small buttons: co-teacher, join code, archive."""
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    if action == "co-teacher":
        form = CoTeacherForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(_("Enter a username."))
            teacher = classroom_teacher_add(
                classroom=classroom, username=form.cleaned_data["username"], actor=request.user
            )
            messages.success(request, _("%(name)s now teaches this class too.") % {"name": teacher})
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    elif action == "join-code":
        form = JoinCodeForm(request.POST)
        if form.is_valid():
            join_code_regenerate(classroom=classroom, expires_at=form.cleaned_data["expires_at"])
            messages.success(request, _("New join code: %(code)s") % {"code": classroom.join_code})
        else:
            messages.error(request, _("That date is not valid."))
    elif action == "join-code-expire":
        join_code_expire(classroom=classroom)
        messages.success(request, _("The join code no longer works."))
    elif action in ("archive", "unarchive"):
        classroom_archive(classroom=classroom, archived=action == "archive")
        messages.success(request, _("Class archived.") if action == "archive" else _("Class restored."))
    else:
        return HttpResponse(status=404)
    return redirect("class-settings", classroom_id=classroom.pk)


@require_GET
@login_required
def class_roster(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    return _roster_render(request, classroom, RosterImportForm())


def _roster_render(
    request: HttpRequest,
    classroom: object,
    form: RosterImportForm,
    status: int = 200,
    problems: list[tuple[int, str]] | None = None,
) -> HttpResponse:
    students = list(classroom.enrollments.select_related("student").order_by("student__username"))  # type: ignore[attr-defined]
    locked = usernames_locked_out(usernames=[enrollment.student.username for enrollment in students])
    return render(
        request,
        "accounts/roster.html",
        {"classroom": classroom, "form": form, "enrollments": students, "locked": locked, "problems": problems or []},
        status=status,
    )


@sensitive_variables()  # the generated passwords are locals: stars in any error report
@require_POST
@login_required
def roster_import_view(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    form = RosterImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _roster_render(request, classroom, form, status=400)
    try:
        handed_back = roster_import(classroom=classroom, text=form.cleaned_data["file"], actor=request.user)
    except RosterError as exc:
        return _roster_render(request, classroom, form, status=400, problems=exc.problems)
    # Shown on the roster's next load: static/js/roster.js reloads it once the file is saved
    # (without script, the teacher's next visit), so the result never sits under an old error.
    imported = len(roster_parse(text=form.cleaned_data["file"]))
    result = ngettext("Imported %(count)d student.", "Imported %(count)d students.", imported) % {"count": imported}
    if handed_back:
        result += " " + _("Their new passwords are in the downloaded file; keep it safe, they are not shown again.")
    messages.success(request, result)
    response = _passwords_csv(handed_back, f"class{classroom.pk}-passwords.csv")
    response["X-Roster-Imported"] = str(imported)
    return response


@sensitive_variables()  # the new passwords are locals: stars in any error report
@require_POST
@login_required
def roster_reset(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    ids = [
        value for value in request.POST.getlist("student") if value.isascii() and value.isdigit() and len(value) < 19
    ]
    students = list(classroom_students(classroom=classroom).filter(pk__in=ids))
    if not students:
        messages.error(request, _("Tick the students whose passwords to reset."))
        return redirect("class-roster", classroom_id=classroom.pk)
    try:
        handed_back = passwords_reset(classroom=classroom, students=students, actor=request.user)
    except ValidationError as exc:  # e.g. a teacher's account someone enrolled: not the roster's to reset
        messages.error(request, " ".join(exc.messages))
        return redirect("class-roster", classroom_id=classroom.pk)
    # Shown on the roster the page goes back to (static/js/roster.js), so a teacher sees it was
    # done: a second press would reset them again, and the first file's passwords stop working.
    messages.success(
        request,
        ngettext(
            "The password of %(n)d student was reset: the new one is in the downloaded CSV.",
            "The passwords of %(n)d students were reset: the new ones are in the downloaded CSV.",
            len(handed_back),
        )
        % {"n": len(handed_back)},
    )
    return _passwords_csv(handed_back, f"class{classroom.pk}-new-passwords.csv")


@require_POST
@login_required
def roster_remove(request: HttpRequest, classroom_id: int, student_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    student = classroom_student_get(classroom=classroom, student_id=student_id)
    student_remove(classroom=classroom, student=student, actor=request.user)
    messages.success(request, _("%(name)s was removed from the class.") % {"name": student})
    return redirect("class-roster", classroom_id=classroom.pk)


@require_POST
@login_required
def roster_unlock(request: HttpRequest, classroom_id: int, student_id: int) -> HttpResponse:
    """A locked-out student may try to log in again (their password stays)."""
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    student = classroom_student_get(classroom=classroom, student_id=student_id)
    try:
        student_unlock(classroom=classroom, student=student, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("%(name)s may log in again.") % {"name": student})
    return redirect("class-roster", classroom_id=classroom.pk)


@sensitive_post_parameters("password", "password_again")
@sensitive_variables()
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Students sign up with the join code their teacher gave them."""
    code = request.GET.get("code", "")[:32]
    form = RegisterForm(request.POST or None, initial={"join_code": code})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = student_register(
                join_code=data["join_code"],
                username=data["username"],
                display_name=data["display_name"],
                password=data["password"],
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("joined")
    # A link with the code in it names the class before the student signs up, or says at
    # once that the code lets no one in (expired, stopped, mistyped), before they type.
    joining = classroom_for_join_code(code=code) if code and request.method == "GET" else None
    return render(
        request,
        "accounts/register.html",
        {"form": form, "joining": joining, "code_refused": bool(code) and request.method == "GET" and joining is None},
        status=400 if request.method == "POST" else 200,
    )


@require_GET
@login_required
def joined(request: HttpRequest) -> HttpResponse:
    """Where a new student lands after signing up: which class they joined, and what next."""
    return render(request, "accounts/joined.html", {"classroom": classroom_for_student(user=request.user)})


@require_POST
@login_required
def theme_set(request: HttpRequest) -> HttpResponse:
    """The header's theme toggle: remember the choice on the account (204), 400 for an unknown one."""
    try:
        user_theme_set(user=request.user, theme=request.POST.get("theme", ""))
    except ValidationError:
        return HttpResponse(status=400)
    return HttpResponse(status=204)
