from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm as OwnPasswordChangeForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import AuditEvent, Classroom, Enrollment, User
from .services import lockout_clear, password_set_by_another_end_access
from .sockets import CLOSE_ACCESS_CHANGED, CLOSE_SIGNED_OUT, user_sockets_close

# The site's name in the admin's header and tab titles, not Django's.
admin.site.site_header = _("webchat administration")
admin.site.site_title = _("webchat admin")


class PasswordSetForm(AdminPasswordChangeForm):
    """Django admin's "change password" form. A password an admin sets ends what the old
    one let in, as a teacher's reset does (a lockout, sockets, API keys); this save() is the
    only place the admin's password change passes through, so it calls the service here
    rather than in a signal on every password save."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            password_set_by_another_end_access(users=[user])
        return user


class OwnPasswordChangeView(PasswordChangeView):
    """The admin site's "change my password" page (Django's view, form and template), after
    which the account's open chat sockets close: Django's view calls no service of ours.
    webchat/urls.py mounts it over admin/password_change/."""

    form_class = OwnPasswordChangeForm
    template_name = "registration/password_change_form.html"

    def get_success_url(self) -> str:
        return reverse("admin:password_change_done")

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}

    def form_valid(self, form: OwnPasswordChangeForm) -> HttpResponse:
        # After Django re-keyed this session for the new password: the page's own socket
        # closes too and reconnects with the new cookie; other sessions' sockets stay closed.
        response = super().form_valid(form)
        user_sockets_close(user_ids=[form.user.pk], code=CLOSE_SIGNED_OUT)
        return response


own_password_change = admin.site.admin_view(OwnPasswordChangeView.as_view())


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "role", "is_active", "last_login", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "email")
    fieldsets = DjangoUserAdmin.fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)
    change_password_form = PasswordSetForm
    actions = ["unlock_logins"]

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Deactivating ends every sign-in of the account (Django's backends refuse an
        # inactive user); its open chat sockets close with them.
        if change and "is_active" in form.changed_data and not obj.is_active:
            user_sockets_close(user_ids=[obj.pk], code=CLOSE_SIGNED_OUT)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_sockets_close(user_ids=[obj.pk], code=CLOSE_SIGNED_OUT)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        user_sockets_close(user_ids=list(queryset.values_list("pk", flat=True)), code=CLOSE_SIGNED_OUT)
        super().delete_queryset(request, queryset)

    @admin.action(description=_("Let the selected users log in again (clear lockouts)"))
    def unlock_logins(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset)
        for user in users:
            lockout_clear(user=user)
        self.message_user(
            request,
            ngettext("%(count)d user may log in again.", "%(count)d users may log in again.", len(users))
            % {"count": len(users)},
        )


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    autocomplete_fields = ("student",)


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "join_code", "archived", "teacher_can_read", "allow_student_keys", "created_at")
    list_filter = ("archived", "teacher_can_read", "allow_student_keys")
    search_fields = ("name", "join_code", "teachers__username")
    filter_horizontal = ("teachers",)
    inlines = [EnrollmentInline]

    # Archiving a class or taking students out of it here closes their chat sockets, as the
    # teachers' pages do (classroom_archive, student_remove).
    def save_model(self, request: HttpRequest, obj: Classroom, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "archived" in form.changed_data and obj.archived:
            user_sockets_close(user_ids=obj.enrollments.values_list("student_id", flat=True), code=CLOSE_ACCESS_CHANGED)

    def get_deleted_objects(self, objs, request):  # type: ignore[no-untyped-def]
        """A class with students is archived, not deleted: deleting it took its quota and
        model list away and left its students chatting, in their old conversations, on the
        site's defaults. Django's confirmation page lists these as what blocks the delete."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        with_students = [
            str(_("%(class)s has students: archive it instead, or take them out first.") % {"class": classroom})
            for classroom in objs
            if classroom.enrollments.exists()
        ]
        return deleted, counts, perms_needed, [*protected, *with_students]

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        removed = [
            enrollment.student_id
            for enrollment in getattr(formset, "deleted_objects", [])
            if isinstance(enrollment, Enrollment)
        ]
        user_sockets_close(user_ids=removed, code=CLOSE_ACCESS_CHANGED)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the record of what teachers did to students' data."""

    list_display = ("created_at", "actor", "action", "classroom", "subject", "detail")
    list_filter = ("action",)
    search_fields = ("actor__username", "subject__username", "classroom__name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
