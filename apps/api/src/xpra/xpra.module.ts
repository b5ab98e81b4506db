import { Module } from '@nestjs/common';
import { SubmissionModule } from '../submission/submission.module.js';
import { XpraListener } from './xpra-listener.js';
import { XpraOneShot } from './xpra-oneshot.js';

/** The Xpra encoder listener (off, nothing bound, unless XPRA_BIND is set). */
@Module({
  imports: [SubmissionModule],
  providers: [XpraOneShot, XpraListener],
  exports: [XpraListener],
})
export class XpraModule {}
