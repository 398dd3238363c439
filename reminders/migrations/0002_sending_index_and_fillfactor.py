"""Keep the lease renewal of a claimed slot out of the indexes, and leave room for it.

The send task renews each claimed slot's lease (claimed_at, attempts) before
talking to the mail server. With claimed_at indexed, PostgreSQL wrote a new
entry into every index of the table for that; keyed on id instead, and with
10% of each page kept free (fillfactor 90, for rows written from now on),
it updates the row in place (HOT). SQLite: only the index changes.
"""

from django.db import migrations, models

FILLFACTOR = 90


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("reminders", "ReminderSlot")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("reminders", "ReminderSlot")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("reminders", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="reminderslot",
            name="reminder_stuck_sending_idx",
        ),
        migrations.AddIndex(
            model_name="reminderslot",
            index=models.Index(
                condition=models.Q(("status", "sending")),
                fields=["id"],
                name="reminder_sending_idx",
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
    ]
