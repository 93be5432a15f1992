"""Raw messages as real mail clients and MTAs write them, for the email parser's tests."""

from __future__ import annotations

import base64

ORIGINAL_ID = "<1b4e28ba-2fa1-11d2-883f-0016d3cca427@example.com>"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


#: Gmail: multipart/alternative, quoted-printable UTF-8, a wrapped attribution line, a reply.
GMAIL_REPLY = crlf(
    """MIME-Version: 1.0
Date: Tue, 14 May 2024 12:01:09 +0200
References: <root-1@example.com> <1b4e28ba-2fa1-11d2-883f-0016d3cca427@example.com>
In-Reply-To: <1b4e28ba-2fa1-11d2-883f-0016d3cca427@example.com>
Message-ID: <CAFx9Zb3-qR+8aB@mail.gmail.com>
Subject: Re: Your order #1234
From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <Joerg.Mueller@Gmail.com>
To: Example Support <support@example.com>
Cc: Anna <anna@example.net>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"

--000000000000a1b2c3d4e5f6
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Danke, das Paket ist angekommen. Gr=C3=BC=C3=9Fe!

On Mon, May 13, 2024 at 4:22=E2=80=AFPM Example Support <support@example.c=
om>
wrote:

> Your parcel is on its way.
> Tracking: 123
>

--000000000000a1b2c3d4e5f6
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Danke, das Paket ist angekommen. Gr=C3=BC=C3=9Fe!</div>

--000000000000a1b2c3d4e5f6--
"""
)

HTML_ONLY = crlf(
    """From: Shop Customer <customer@example.org>
To: support@example.com
Subject: HTML only
Date: Tue, 14 May 2024 09:00:00 +0000
Message-ID: <html-only-1@example.org>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

"""
    + base64.encodebytes(
        b"<html><head><style>p {color: red}</style><title>t</title></head><body>"
        b"<p>Hello &amp; welcome,</p><p>I need help with<br>my invoice.</p>"
        b"<ul><li>item one</li><li>item two</li></ul>"
        b"<script>alert('x')</script></body></html>"
    ).decode()
)

LATIN_1 = (
    b"From: =?iso-8859-1?q?Fran=E7ois?= <francois@example.fr>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: =?iso-8859-1?q?Probl=E8me?=\r\n"
    b"Date: Tue, 14 May 2024 09:00:00 +0200\r\n"
    b"Message-ID: <latin1-1@example.fr>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"J'ai un probl\xe8me avec ma commande. Merci d'avance, \xe0 bient\xf4t.\r\n"
)

WITH_ATTACHMENT = crlf(
    """From: customer@example.org
To: support@example.com
Subject: Invoice attached
Date: Tue, 14 May 2024 09:00:00 +0000
Message-ID: <att-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset=utf-8

Please find the invoice attached.
--XYZ
Content-Type: application/pdf; name="invoice 42.pdf"
Content-Disposition: attachment; filename="invoice 42.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8
PC9Sb290IDEgMCBSPj4KJSVFT0YK
--XYZ
Content-Type: image/png
Content-Disposition: inline; filename="photo.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--XYZ--
"""
)

OUTLOOK_REPLY = crlf(
    """From: "Doe, John" <john.doe@example.com>
To: support@example.com
Subject: RE: Contract
Date: Tue, 14 May 2024 09:00:00 +0000
Message-ID: <AM0PR01MB1234@eurprd01.prod.outlook.com>
Content-Type: text/plain; charset=utf-8

Yes, please go ahead.

John

________________________________
From: Example Support <support@example.com>
Sent: Monday, May 13, 2024 4:22 PM
To: Doe, John <john.doe@example.com>
Subject: Contract

Shall we renew the contract?
"""
)

ORIGINAL_MESSAGE_REPLY = crlf(
    """From: old.client@example.com
To: support@example.com
Subject: RE: hello
Date: Tue, 14 May 2024 09:00:00 +0000
Message-ID: <om-1@example.com>
Content-Type: text/plain; charset=us-ascii

Thanks, that works.

-----Original Message-----
From: support@example.com
Sent: Monday, May 13, 2024 4:22 PM
Subject: hello

Earlier text.
"""
)

OUT_OF_OFFICE = crlf(
    """From: Away Person <away@example.org>
To: support@example.com
Subject: Automatic reply: Your order
Date: Tue, 14 May 2024 09:00:00 +0000
Message-ID: <ooo-1@example.org>
Auto-Submitted: auto-replied
X-Autoreply: yes
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday.
"""
)

#: A Postfix bounce (RFC 3464), the returned message attached in full.
POSTFIX_BOUNCE = crlf(
    f"""Return-Path: <>
Received: by mail.example.com (Postfix)
\tid 3F1A22C0123; Tue, 14 May 2024 10:15:03 +0000 (UTC)
Date: Tue, 14 May 2024 10:15:03 +0000 (UTC)
From: MAILER-DAEMON@mail.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: support@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="3F1A22C0123.1715681703/mail.example.com"
Content-Transfer-Encoding: 8bit
Message-Id: <20240514101503.3F1A22C0123@mail.example.com>

This is a MIME-encapsulated message.

--3F1A22C0123.1715681703/mail.example.com
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<nobody@example.org>: host mx.example.org[203.0.113.5] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--3F1A22C0123.1715681703/mail.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com
X-Postfix-Queue-ID: 3F1A22C0123
X-Postfix-Sender: rfc822; support@example.com
Arrival-Date: Tue, 14 May 2024 10:15:02 +0000 (UTC)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F1A22C0123.1715681703/mail.example.com
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

Return-Path: <support@example.com>
Received: from hub.example.com (hub.example.com [198.51.100.7])
\tby mail.example.com (Postfix) with ESMTPSA id 3F1A22C0123
\tfor <nobody@example.org>; Tue, 14 May 2024 10:15:02 +0000 (UTC)
From: Example Support <support@example.com>
To: nobody@example.org
Subject: Your order #1234
Date: Tue, 14 May 2024 10:15:01 +0000
Message-ID: {ORIGINAL_ID}
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit

Your parcel is on its way.

--3F1A22C0123.1715681703/mail.example.com--
"""
)


def headers_only_bounce(action: str = "failed", status: str = "5.2.2") -> bytes:
    """A bounce returning only the original headers (RET=HDRS), as Exim and Exchange do."""
    return crlf(
        f"""From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: support@example.com
Subject: Mail delivery failed
Date: Tue, 14 May 2024 10:15:03 +0000
Message-ID: <E1s6ABC-000123-4X@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

Delivery to the following recipient failed: full@example.net

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822;full@example.net
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--b1
Content-Type: text/rfc822-headers

From: Example Support <support@example.com>
To: full@example.net
Subject: Hello
Message-ID: <headers-only-1@example.com>

--b1--
"""
    )
