"""On PostgreSQL, refuse UPDATE and DELETE of audit rows in the database itself.

The one UPDATE allowed is Django setting ``patient_id`` / ``actor_id`` to NULL
when a patient or account is erased: the text copies (patient_ref,
actor_email) keep the trail readable. TRUNCATE (used by test teardown) is a
table operation and not affected.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit trail is append-only: rows cannot be deleted';
    END IF;
    IF (NEW.patient_id IS NOT NULL AND NEW.patient_id IS DISTINCT FROM OLD.patient_id)
       OR (NEW.actor_id IS NOT NULL AND NEW.actor_id IS DISTINCT FROM OLD.actor_id)
       OR ROW(NEW.at, NEW.actor_email, NEW.action, NEW.patient_ref, NEW.object_type,
              NEW.object_id, NEW.path, NEW.ip, NEW.user_agent, NEW.detail)
          IS DISTINCT FROM
          ROW(OLD.at, OLD.actor_email, OLD.action, OLD.patient_ref, OLD.object_type,
              OLD.object_id, OLD.path, OLD.ip, OLD.user_agent, OLD.detail)
    THEN
        RAISE EXCEPTION 'the audit trail is append-only: rows cannot be changed';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
