import django.db.models.deletion
from django.db import migrations, models


def parents_fill(apps, schema_editor):
    """Conversations so far were lists: each reply follows the last question before it, each
    question the last reply before it (regenerated replies are siblings under one question)."""
    Message = apps.get_model("conversations", "Message")
    last_question = last_reply = None
    conversation_id = None
    changed = []
    rows = Message.objects.order_by("conversation_id", "id").only("id", "conversation_id", "role")
    for message in rows.iterator(chunk_size=2000):
        if message.conversation_id != conversation_id:
            conversation_id, last_question, last_reply = message.conversation_id, None, None
        if message.role == "user":
            message.parent_id = last_reply
            last_question = message.pk
        else:
            message.parent_id = last_question
            last_reply = message.pk
        changed.append(message)
        if len(changed) >= 2000:
            Message.objects.bulk_update(changed, ["parent"], batch_size=500)
            changed = []
    Message.objects.bulk_update(changed, ["parent"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_message_usage_review"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="conversations.message",
                verbose_name="follows",
            ),
        ),
        migrations.RunPython(parents_fill, migrations.RunPython.noop),
    ]
