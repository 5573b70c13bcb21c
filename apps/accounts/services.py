"""Writes for people and classes."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from axes.utils import reset as axes_reset
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent, Classroom, Enrollment, User
from .selectors import (
    classroom_for_join_code,
    classroom_students,
    students_manageable_by,
    username_fold,
    username_taken,
    users_by_folded_username,
)
from .signals import passwords_set_by_another
from .sockets import CLOSE_ACCESS_CHANGED, CLOSE_SIGNED_OUT, user_sockets_close


def user_upsert(*, username: str, role: str, display_name: str = "", password: str | None = None) -> tuple[User, bool]:
    """Create the user if missing; set the password when given.

    Side effects: one User row created or updated. Returns (user, created).
    """
    # A new user is written whole in one INSERT.
    admin = role == User.Role.ADMIN
    defaults: dict[str, object] = {"role": role, "display_name": display_name, "is_staff": admin, "is_superuser": admin}
    if password is not None:
        defaults["password"] = lambda: make_password(password)  # hashed only if created
    user, created = User.objects.get_or_create(username=User.normalize_username(username), defaults=defaults)
    if created:
        return user, created
    changed: list[str] = []
    if role == User.Role.ADMIN and not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        changed += ["is_staff", "is_superuser"]
    if password is not None:
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
    if password is not None and not created:
        user_sockets_close(user_ids=[user.pk], code=CLOSE_SIGNED_OUT)
    return user, created


@transaction.atomic
def classroom_get_or_create(*, name: str, teacher: User) -> tuple[Classroom, bool]:
    """A class named `name` taught by `teacher`. Side effects: Classroom row, teacher link."""
    classroom = Classroom.objects.filter(name=name, teachers=teacher).first()
    if classroom is not None:
        return classroom, False
    classroom = Classroom.objects.create(name=name)
    classroom.teachers.add(teacher)
    return classroom, True


def enrollment_add(*, classroom: Classroom, student: User) -> Enrollment:
    """Put `student` in `classroom` (no-op when already there). Side effects: Enrollment row."""
    enrollment, _ = Enrollment.objects.get_or_create(classroom=classroom, student=student)
    return enrollment


# --- Classes: what teachers do every week ---------------------------------------------

JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in class
JOIN_CODE_LENGTH = 8
GENERATED_PASSWORD_WORDS = 3
ROSTER_MAX_ROWS = 500
USERNAME_PATTERN = re.compile(r"^[\w.@+-]{1,150}$")


def audit_record(
    *, actor: User, action: str, classroom: Classroom | None = None, subject: User | None = None, detail: str = ""
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor, action=action, classroom=classroom, subject=subject, detail=detail[:300]
    )


@transaction.atomic
def classroom_create(*, teacher: User, name: str) -> Classroom:
    """A new class taught by `teacher`, with a join code. Side effects: Classroom, link."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give the class a name.")})
    classroom = Classroom.objects.create(name=name[:150])
    classroom.teachers.add(teacher)
    join_code_regenerate(classroom=classroom)
    return classroom


def classroom_settings_set(
    *,
    classroom: Classroom,
    name: str,
    system_prompt: str,
    max_reply_tokens: int | None,
    teacher_can_read: bool,
    allow_student_keys: bool,
) -> Classroom:
    """Side effects: the Classroom row. (Its models: providers.services.class_models_set.)"""
    classroom.name = name.strip()[:150] or classroom.name
    classroom.system_prompt = system_prompt.strip()
    classroom.max_reply_tokens = max_reply_tokens
    classroom.teacher_can_read = teacher_can_read
    classroom.allow_student_keys = allow_student_keys
    classroom.save(
        update_fields=["name", "system_prompt", "max_reply_tokens", "teacher_can_read", "allow_student_keys"]
    )
    return classroom


def classroom_archive(*, classroom: Classroom, archived: bool = True) -> Classroom:
    """An archived class leaves the teacher's list and takes no new students (its join
    code stops working); its history stays, but its students chat in it no more.
    Side effects: the Classroom row; on archiving, the students' open chat sockets close."""
    classroom.archived = archived
    classroom.save(update_fields=["archived"])
    if archived:
        user_sockets_close(
            user_ids=classroom.enrollments.values_list("student_id", flat=True), code=CLOSE_ACCESS_CHANGED
        )
    return classroom


def _require_teacher_of(*, classroom: Classroom, actor: User) -> None:
    """The views reach a class only through classroom_get_for_teacher; services that touch
    other people's accounts check again, so no other caller can skip it."""
    if not actor.may_teach or (not actor.is_superuser and not classroom.teachers.filter(pk=actor.pk).exists()):
        raise PermissionDenied


@transaction.atomic
def classroom_teacher_add(*, classroom: Classroom, username: str, actor: User) -> User:
    """Make another teacher a co-teacher of this class. It gives them this class (its
    roster, usage, keys) and nothing else: no power over the actor's other classes or over
    accounts outside this class. Usernames compare without case, as at sign-up.
    Side effects: the teacher link, an AuditEvent (the record of who added whom)."""
    _require_teacher_of(classroom=classroom, actor=actor)
    found = users_by_folded_username(usernames=[username.strip()]).get(username_fold(username.strip()), [])
    teachers = [user for user in found if user.is_active and user.role in (User.Role.TEACHER, User.Role.ADMIN)]
    if len(teachers) != 1:
        raise ValidationError({"username": _("No teacher with that username.")})
    teacher = teachers[0]
    if classroom.teachers.filter(pk=teacher.pk).exists():
        raise ValidationError({"username": _("%(name)s already teaches this class.") % {"name": teacher}})
    classroom.teachers.add(teacher)
    audit_record(
        actor=actor, action=AuditEvent.Action.ADD_TEACHER, classroom=classroom, subject=teacher, detail=teacher.username
    )
    return teacher


def join_code_regenerate(*, classroom: Classroom, expires_at: datetime | None = None) -> str:
    """A fresh join code (the old one stops working). Side effects: the Classroom row."""
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        if not Classroom.objects.filter(join_code=code).exists():
            break
    classroom.join_code, classroom.join_code_expires_at = code, expires_at
    classroom.save(update_fields=["join_code", "join_code_expires_at"])
    return code


def join_code_expire(*, classroom: Classroom) -> None:
    classroom.join_code, classroom.join_code_expires_at = "", None
    classroom.save(update_fields=["join_code", "join_code_expires_at"])


def _password_check(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


def student_register(*, join_code: str, username: str, display_name: str, password: str) -> User:
    """A student signs themselves up with the class's join code. Side effects: User and
    Enrollment rows. Raises ValidationError (nothing written) on a bad code or input."""
    # As the login form reads it (NFKC): "ｔｅａｃｈｅｒ" is "teacher", and taken.
    username = User.normalize_username(username.strip())
    if not USERNAME_PATTERN.match(username):
        raise ValidationError({"username": _("Use letters, digits and . @ + - _ only.")})
    # The cheap checks first: a made-up code or a taken name costs no hashing.
    if classroom_for_join_code(code=join_code) is None:
        raise ValidationError({"join_code": _("That join code is not valid (or has expired). Ask your teacher.")})
    if username_taken(username=username):
        raise ValidationError({"username": _("That username is taken.")})
    user = User(username=username, display_name=display_name.strip()[:150], role=User.Role.STUDENT)
    _password_check(password, user)
    user.password = make_password(password)  # hashed before the transaction (PASSWORD_HASHING_OUTSIDE)
    try:
        with transaction.atomic():  # and checked again in it: the code may have changed meanwhile
            classroom = classroom_for_join_code(code=join_code)
            if classroom is None:
                raise ValidationError(
                    {"join_code": _("That join code is not valid (or has expired). Ask your teacher.")}
                )
            if username_taken(username=username):
                raise ValidationError({"username": _("That username is taken.")})
            user.save()
            Enrollment.objects.create(classroom=classroom, student=user)
    except IntegrityError:  # the same name, taken by a sign-up a moment before this one
        raise ValidationError({"username": _("That username is taken.")}) from None
    return user


# PASSWORD_HASHING_OUTSIDE: a password is hashed (PBKDF2, about a quarter of a second of CPU on
# purpose) before the transaction that stores it. On SQLite a transaction holds the one
# writer lock every chat turn of the server needs: a 150-student roster imported inside it
# held every student's next message for 35 s.


def password_generate() -> str:
    """Readable for a student copying it from paper: word-word-word-NN."""
    words = [
        "apple",
        "river",
        "cloud",
        "tiger",
        "piano",
        "maple",
        "orbit",
        "pearl",
        "cedar",
        "comet",
        "delta",
        "ember",
        "flame",
        "grape",
        "harbor",
        "island",
        "jade",
        "koala",
        "lemon",
        "mango",
        "nova",
        "ocean",
        "panda",
        "quartz",
        "robin",
        "solar",
        "tulip",
        "violet",
        "willow",
        "zebra",
    ]
    return "-".join(secrets.choice(words) for _ in range(GENERATED_PASSWORD_WORDS)) + f"-{secrets.randbelow(90) + 10}"


@dataclass(frozen=True)
class RosterLine:
    line: int
    username: str
    display_name: str
    password: str


class RosterError(ValidationError):
    """Bad rows, each with its line number; nothing was imported."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__([f"{line}: {problem}" for line, problem in problems])
        self.problems = problems


# Column titles a roster's first row may hold (compared without case, spaces, _ or -): a
# school's own export names them in its language (学号, 姓名, 密码...). A first row holding
# one of them is the header, not a student called "学号".
ROSTER_TITLES = frozenset(
    {
        # the username column
        "username", "user", "login", "account", "id", "studentid", "studentnumber",
        "用户名", "用户", "账号", "帐号", "账户", "登录名", "学号", "编号", "序号",
        # the display name column
        "name", "displayname", "fullname", "studentname", "姓名", "名字", "显示名", "显示名称", "学生姓名",
        # the password column
        "password", "pass", "密码", "初始密码",
    }
)  # fmt: skip


def _is_title(cell: str) -> bool:
    return "".join(cell.lower().split()).replace("_", "").replace("-", "") in ROSTER_TITLES


def roster_parse(*, text: str) -> list[RosterLine]:
    """username, display name, optional password; a header row (column titles, in English
    or Chinese: ROSTER_TITLES) is allowed. Every problem is reported with its line number."""
    problems: list[tuple[int, str]] = []
    lines: list[RosterLine] = []
    seen: set[str] = set()
    first = True
    # Universal newlines: a file saved with old Mac line ends (a lone CR) reads as lines too.
    # strict: a quote left open is an error, not a cell that swallows the lines after it.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=None), strict=True)
    try:
        for number, row in enumerate(reader, start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row] + ["", ""]
            if first:
                first = False
                # Titles only: the username column's, or every cell of the row. A student
                # whose name or password happens to be a title word ("Name") is a student.
                if _is_title(cells[0]) or all(_is_title(cell) for cell in cells if cell):
                    continue
            # The username as the login form will read it (NFKC: full-width letters are letters).
            username, display_name, password = User.normalize_username(cells[0]), cells[1], cells[2]
            if any("\x00" in cell for cell in cells):
                problems.append((number, str(_("This line holds a NUL character, which cannot be stored."))))
            elif not USERNAME_PATTERN.match(username):
                problems.append((number, str(_("“%(value)s” is not a valid username.") % {"value": username[:40]})))
            elif username_fold(username) in seen:
                problems.append((number, str(_("%(value)s appears twice.") % {"value": username})))
            seen.add(username_fold(username))
            lines.append(RosterLine(number, username, display_name[:150], password))
    except csv.Error as error:  # a field past the csv module's size limit, a stray quote
        problems.append((reader.line_num, str(_("This line cannot be read as CSV (%(error)s).") % {"error": error})))
    if len(lines) > ROSTER_MAX_ROWS:
        problems.append((0, str(_("At most %(n)d students per import.") % {"n": ROSTER_MAX_ROWS})))
    if not lines and not problems:
        problems.append((1, str(_("The file has no students in it."))))
    if problems:
        raise RosterError(problems)
    return lines


def _roster_refusal(*, line: RosterLine, found: list[User], manageable: set[int]) -> str | None:
    """Why this row may not be imported, or None. A row may name a new username, or a
    student the importing teacher already teaches (to enroll them here too, or to set their
    name or password); any other existing account, whatever its case, is someone else's."""
    if not found:
        return None
    if len(found) == 1 and found[0].pk in manageable:
        return None
    return str(_("%(value)s: this username is taken; ask an admin to add the student.") % {"value": line.username})


def roster_import(*, classroom: Classroom, text: str, actor: User) -> list[tuple[str, str, str]]:
    """Create students from a CSV, or enroll students the actor already teaches. All or
    nothing: any bad row and no row is imported. Returns (username, display name, password)
    for the students whose password was generated or given, to hand back once.
    Side effects: Users, Enrollments, AuditEvents (the import, and one per existing student
    whose password was set), and for those students what ends with an old password
    (password_set_by_another_end_access: lockouts, sessions' sockets, API keys).
    The rows are checked and the passwords hashed first (PASSWORD_HASHING_OUTSIDE), then
    written in one transaction."""
    _require_teacher_of(classroom=classroom, actor=actor)
    lines = roster_parse(text=text)
    problems: list[tuple[int, str]] = []
    existing = users_by_folded_username(usernames=[line.username for line in lines])
    manageable = set(
        students_manageable_by(user=actor)
        .filter(pk__in=[user.pk for users in existing.values() for user in users])
        .values_list("pk", flat=True)
    )
    planned: list[tuple[RosterLine, User | None, str]] = []
    for line in lines:
        found = existing.get(username_fold(line.username), [])
        refusal = _roster_refusal(line=line, found=found, manageable=manageable)
        if refusal is not None:
            problems.append((line.line, refusal))
            continue
        user = found[0] if found else None
        password = line.password or (password_generate() if user is None else "")
        candidate = user or User(username=line.username, display_name=line.display_name, role=User.Role.STUDENT)
        if password:
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                problems.append((line.line, " ".join(exc.messages)))
                continue
        planned.append((line, user, password))
    if problems:
        raise RosterError(problems)
    hashed = {line.line: make_password(password) for line, _user, password in planned if password}
    handed_back: list[tuple[str, str, str]] = []
    reset: list[User] = []
    try:
        with transaction.atomic():
            # Checked again in the transaction: while the passwords were hashed, a name may
            # have been taken (in any case) or an account removed.
            again = users_by_folded_username(usernames=[line.username for line in lines])
            if {key: [user.pk for user in users] for key, users in again.items()} != {
                key: [user.pk for user in users] for key, users in existing.items()
            }:
                raise IntegrityError("the roster's accounts changed meanwhile")
            for line, user, password in planned:
                if user is None:
                    user = User(username=line.username, display_name=line.display_name, role=User.Role.STUDENT)
                    user.password = hashed.get(line.line) or make_password(None)
                    user.save()
                else:
                    changed = []
                    if line.display_name:
                        user.display_name = line.display_name
                        changed.append("display_name")
                    if password:
                        user.password = hashed[line.line]
                        changed.append("password")
                        reset.append(user)
                    if changed:
                        user.save(update_fields=changed)
                if password:
                    handed_back.append((user.username, user.display_name, password))
                Enrollment.objects.get_or_create(classroom=classroom, student=user)
            for user in reset:
                audit_record(
                    actor=actor,
                    action=AuditEvent.Action.RESET_PASSWORDS,
                    classroom=classroom,
                    subject=user,
                    detail="roster import",
                )
            if reset:
                password_set_by_another_end_access(users=reset)
            audit_record(
                actor=actor,
                action=AuditEvent.Action.IMPORT_ROSTER,
                classroom=classroom,
                detail=f"{len(lines)} students",
            )
    except IntegrityError:
        # A username taken, or an account removed, while the passwords were hashed.
        raise RosterError([(0, str(_("A username was taken meanwhile. Nothing was imported; try again.")))]) from None
    return handed_back


def _students_of(*, classroom: Classroom, students: list[User], actor: User) -> None:
    """Refuse (nothing changed) unless every one is a student of this class that the actor
    may manage."""
    _require_teacher_of(classroom=classroom, actor=actor)
    enrolled = set(classroom_students(classroom=classroom).values_list("pk", flat=True))
    allowed = set(
        students_manageable_by(user=actor).filter(enrollments__classroom=classroom).values_list("pk", flat=True)
    )
    for student in students:
        if student.pk not in enrolled:
            raise ValidationError(_("%(value)s is not in this class.") % {"value": student.username})
        if student.pk not in allowed:
            raise ValidationError(_("%(value)s is not a student account; ask an admin.") % {"value": student.username})


def passwords_reset(*, classroom: Classroom, students: list[User], actor: User) -> list[tuple[str, str, str]]:
    """New generated passwords for these students of the class, handed back once. A reset
    also ends a login lockout, so the student can use the new password at once.
    Side effects: the Users' passwords, one AuditEvent each, and what ends with an old
    password (password_set_by_another_end_access: lockouts, sessions' sockets, API keys).
    The passwords are hashed before the transaction (PASSWORD_HASHING_OUTSIDE)."""
    _students_of(classroom=classroom, students=students, actor=actor)
    passwords = [password_generate() for _student in students]
    hashed = [make_password(password) for password in passwords]
    with transaction.atomic():
        for student, password_hash in zip(students, hashed, strict=True):
            student.password = password_hash
            student.save(update_fields=["password"])
            audit_record(actor=actor, action=AuditEvent.Action.RESET_PASSWORDS, classroom=classroom, subject=student)
        password_set_by_another_end_access(users=students)
    return [
        (student.username, student.display_name, password)
        for student, password in zip(students, passwords, strict=True)
    ]


def password_set_by_another_end_access(*, users: list[User]) -> None:
    """After a teacher or an admin set these users' passwords (a forgotten one, or an account
    someone else got into): the login lockout ends, so the new password works at once; the
    old password's sessions are over (their hash no longer matches), and so are their chat
    sockets; and what the apps above granted on the old password ends too (its API keys:
    a key made by whoever got in would otherwise go on spending the student's quota).
    Side effects: axes records cleared, sockets closed (on commit), the
    passwords_set_by_another signal (apps/gateway revokes the users' API keys)."""
    for user in users:
        lockout_clear(user=user)
    user_sockets_close(user_ids=[user.pk for user in users], code=CLOSE_SIGNED_OUT)
    passwords_set_by_another.send(sender=User, users=users)


def lockout_clear(*, user: User) -> int:
    """Forget the failed logins django-axes counted for this account (from every address),
    so a locked-out user can log in again at once. Every password change made for someone
    else (a teacher's reset, an admin's change) calls this: the lock page tells students a
    reset is the way back in. Returns how many attempt records were removed.
    Side effects: axes AccessAttempt rows deleted."""
    return axes_reset(username=user.username)


def student_unlock(*, classroom: Classroom, student: User, actor: User) -> int:
    """A teacher lets a locked-out student of the class try again (password unchanged).
    Side effects: axes records cleared, an AuditEvent."""
    _students_of(classroom=classroom, students=[student], actor=actor)
    removed = lockout_clear(user=student)
    audit_record(actor=actor, action=AuditEvent.Action.UNLOCK_LOGIN, classroom=classroom, subject=student)
    return removed


def student_remove(*, classroom: Classroom, student: User, actor: User) -> None:
    """Take a student out of the class (their account, conversations and ledger stay).
    Side effects: the Enrollment deleted, an AuditEvent, the student's open chat sockets
    closed (on commit)."""
    _require_teacher_of(classroom=classroom, actor=actor)
    if Enrollment.objects.filter(classroom=classroom, student=student).delete()[0]:
        audit_record(actor=actor, action=AuditEvent.Action.REMOVE_STUDENT, classroom=classroom, subject=student)
        user_sockets_close(user_ids=[student.pk], code=CLOSE_ACCESS_CHANGED)


def user_theme_set(*, user: User, theme: str) -> User:
    """Remember the colour theme the person picked (system, light or dark).

    Side effects: the user's `theme` column is written. Raises ValidationError for another value.
    """
    if theme not in User.Theme.values:
        raise ValidationError(_("Unknown theme."), code="invalid")
    if user.theme != theme:
        user.theme = theme
        user.save(update_fields=["theme"])
    return user
