"""Rendering of the product's emails from the templates folder."""
from shared.mail import Mailer


def test_every_template_renders_text_and_html_with_the_link():
    mailer = Mailer(mail_from="SaaS <no-reply@mail.example>", public_app_url="https://app.example/")
    link = mailer.link("accept-invitation", "tok_EN-123")
    assert link == "https://app.example/accept-invitation?token=tok_EN-123"
    contexts = {
        "verify_email": {"name": "Ann", "email": "ann@example.com", "link": link},
        "password_reset": {"name": "Ann", "link": link},
        "invitation": {"organization_name": "Acme", "role": "agent", "email": "ann@example.com",
                       "expires_at": "2026-12-06 10:00 UTC", "link": link},
    }
    for template, context in contexts.items():
        subject, text, html = mailer.render(template, context)
        assert subject and "\n" not in subject
        assert link in text and f'href="{link}"' in html, template
    assert mailer.message_id_domain == "mail.example"


def test_html_is_escaped_and_the_subject_stays_one_line():
    mailer = Mailer(mail_from="no-reply@mail.example", public_app_url="https://app.example")
    subject, text, html = mailer.render("invitation", {
        "organization_name": "<script>x</script>\r\nBcc: victim@example.com", "role": "member",
        "email": "a@example.com", "expires_at": "soon", "link": "https://app.example/accept-invitation?token=t"})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\n" not in subject and "\r" not in subject
