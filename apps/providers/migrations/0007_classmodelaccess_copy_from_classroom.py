"""Copy each class's allowed models and default model from accounts.Classroom into its
ClassModelAccess row; accounts 0007 then drops the old fields. Reversible: going back
copies them onto the class again (accounts 0007's reverse has re-added the fields by then)."""
from django.db import migrations
from django.db.models import Q


def copy_to_access(apps, schema_editor):  # type: ignore[no-untyped-def]
    Classroom = apps.get_model("accounts", "Classroom")
    ClassModelAccess = apps.get_model("providers", "ClassModelAccess")
    # Only classes that set something get a row: no row means every model, no default.
    configured = Classroom.objects.filter(Q(allowed_models__isnull=False) | Q(default_model__isnull=False)).distinct()
    for classroom in configured.prefetch_related("allowed_models"):
        access, _ = ClassModelAccess.objects.update_or_create(
            classroom_id=classroom.pk, defaults={"default_model_id": classroom.default_model_id})
        access.allowed_models.set(classroom.allowed_models.all())


def copy_to_classroom(apps, schema_editor):  # type: ignore[no-untyped-def]
    Classroom = apps.get_model("accounts", "Classroom")
    ClassModelAccess = apps.get_model("providers", "ClassModelAccess")
    for access in ClassModelAccess.objects.prefetch_related("allowed_models"):
        classroom = Classroom.objects.get(pk=access.classroom_id)
        classroom.default_model_id = access.default_model_id
        classroom.save(update_fields=["default_model"])
        classroom.allowed_models.set(access.allowed_models.all())


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_enrollment_verbose_names"),
        ("providers", "0006_classmodelaccess"),
    ]

    operations = [migrations.RunPython(copy_to_access, copy_to_classroom)]
